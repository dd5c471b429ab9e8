"""Identification statistics on random activations, checked against the slow reference."""

from __future__ import annotations

import pytest
import torch
from reference_stats import (
    reference_lape,
    reference_layer_statistics,
    reference_probabilities,
)

from slam_align.errors import SlamError
from slam_align.identify.lape import lape_entropy, lape_select
from slam_align.identify.select import select_contiguous, select_layers, select_top_k
from slam_align.identify.stats import (
    ACTIVATION_SCORES,
    ActivationCounter,
    activation_scores,
    jaccard_with,
    layer_statistics,
    mean_squared_deviation,
    top_fraction_sets,
)

LANGS = ["en", "de", "bn"]


def _random_activations(seed=0, layers=3, width=24, questions=4):
    """acts[lang][question][layer] = (tokens, width) with a per-language bias so languages differ."""
    g = torch.Generator().manual_seed(seed)
    acts = {}
    for li, lang in enumerate(LANGS):
        bias = torch.randn(layers, width, generator=g) * (0.3 + 0.4 * li)
        acts[lang] = []
        for _ in range(questions):
            n = int(torch.randint(3, 9, (1,), generator=g))
            acts[lang].append([torch.randn(n, width, generator=g) + bias[layer] for layer in range(layers)])
    return acts


def _count_fast(acts, threshold=0.0, batch_size=3):
    """Feed the activations, padded into batches, through real Linear modules with the counter hooked."""
    layers = len(acts["en"][0])
    width = acts["en"][0][0].shape[1]
    mods = [[torch.nn.Linear(width, 2)] for _ in range(layers)]
    with ActivationCounter(mods, LANGS, threshold) as counter:
        for li, lang in enumerate(LANGS):
            qs = acts[lang]
            for start in range(0, len(qs), batch_size):
                chunk = qs[start : start + batch_size]
                t = max(q[0].shape[0] for q in chunk)
                mask = torch.zeros(len(chunk), t, dtype=torch.bool)
                for row, q in enumerate(chunk):
                    mask[row, : q[0].shape[0]] = True
                counter.set_batch(mask, li)
                for layer in range(layers):
                    # Padding holds large positive values: if it were counted, the test would fail.
                    x = torch.full((len(chunk), t, width), 5.0)
                    for row, q in enumerate(chunk):
                        x[row, : q[layer].shape[0]] = q[layer]
                    mods[layer][0](x)
        return counter.result()


def _as_lists(acts):
    return {lang: [[layer.tolist() for layer in q] for q in qs] for lang, qs in acts.items()}


@pytest.mark.parametrize("threshold", [0.0, 0.5])
def test_probabilities_match_reference(threshold):
    acts = _random_activations()
    counts = _count_fast(acts, threshold)
    ref_probs, ref_tokens = reference_probabilities(_as_lists(acts), LANGS, threshold)
    assert counts.tokens.tolist() == [ref_tokens[lang] for lang in LANGS]
    for fast, ref in zip(counts.probabilities(), ref_probs):
        assert torch.allclose(fast, torch.tensor(ref, dtype=torch.float64), atol=0, rtol=1e-12)


def test_layer_statistics_match_reference():
    acts = _random_activations(seed=1)
    probs = _count_fast(acts).probabilities()
    ref_probs, _ = reference_probabilities(_as_lists(acts), LANGS)
    stats = layer_statistics(probs, LANGS, overlap_top_fraction=0.25)
    ref = reference_layer_statistics(ref_probs, LANGS, overlap_top_fraction=0.25)
    for key in ("activated_count", "count_msd", "fraction_msd", "overlap_with_en"):
        fast, slow = (
            torch.tensor(stats[key], dtype=torch.float64),
            torch.tensor(ref[key], dtype=torch.float64),
        )
        assert torch.allclose(fast, slow, rtol=1e-9, atol=1e-12), key
    # English overlaps itself perfectly; the per-language bias makes the others overlap less.
    assert all(row[0] == 1.0 for row in stats["overlap_with_en"])
    assert all(m < 1.0 for m in stats["mean_overlap_non_en"])


def test_lape_matches_reference():
    acts = _random_activations(seed=2, layers=4, width=40, questions=5)
    probs = _count_fast(acts).probabilities()
    ref_probs, _ = reference_probabilities(_as_lists(acts), LANGS)
    for top_rate, filter_rate in [(0.05, 0.9), (0.1, 0.5)]:
        result = lape_select(probs, top_rate=top_rate, filter_rate=filter_rate)
        assert result["specific_count"] == reference_lape(ref_probs, top_rate, filter_rate)
        assert sum(result["specific_count"]) == result["num_selected"] > 0


def test_lape_finds_planted_language_neurons():
    # Layer 1 holds 6 neurons that fire only for 'bn'; everything else fires for everyone.
    probs = [torch.full((3, 50), 0.5, dtype=torch.float64) for _ in range(3)]
    for p in probs:
        p += torch.linspace(0, 0.01, 50, dtype=torch.float64)  # distinct values, no ties
    probs[1][:, :6] = torch.tensor([0.0, 0.0, 0.9], dtype=torch.float64).unsqueeze(1)
    result = lape_select(probs, top_rate=0.04, filter_rate=0.9)
    assert result["specific_count"] == [0, 6, 0]
    assert result["specific_per_lang"][1] == [0, 0, 6]


def test_entropy_edge_cases():
    p = torch.tensor([[0.0, 0.2, 0.3], [0.0, 0.2, 0.0]], dtype=torch.float64)
    ent = lape_entropy(p)
    assert ent[0] == float("inf")  # never active: not a distribution
    assert ent[1].item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert ent[2].item() == 0.0  # one language only


def test_helpers():
    assert mean_squared_deviation(torch.tensor([1.0, 3.0])).item() == 1.0
    p = torch.tensor([[0.9, 0.8, 0.1, 0.1], [0.1, 0.8, 0.9, 0.1]])
    sets = top_fraction_sets(p, 0.5)
    assert sets.tolist() == [[True, True, False, False], [False, True, True, False]]
    assert jaccard_with(sets, 0).tolist() == [1.0, pytest.approx(1 / 3)]
    ties = top_fraction_sets(torch.zeros(1, 4), 0.5)
    assert ties.tolist() == [[True, True, False, False]]  # ties: lower index first


def test_scores():
    stats = {"fraction_msd": [0.0, 0.02, 0.01], "mean_overlap_non_en": [1.0, 0.5, 0.0]}
    assert activation_scores(stats, "msd") == [0.0, 0.02, 0.01]
    assert activation_scores(stats, "overlap") == [0.0, 0.5, 1.0]
    assert activation_scores(stats, "combined") == pytest.approx([0.0, 0.75, 0.75])
    with pytest.raises(SlamError, match="add 'en'"):
        activation_scores({"fraction_msd": [0.1], "mean_overlap_non_en": [None]}, "overlap")


def test_selection():
    scores = [0.1, 0.9, 0.3, 0.8, 0.2, 0.85]
    assert select_top_k(scores, 3) == [1, 3, 5]
    assert select_contiguous(scores, 3) == [1, 2, 3]  # sums 1.3, 2.0, 1.3, 1.85
    assert select_contiguous([0.1, 0.1, 0.9, 0.9, 0.2, 0.1], 2) == [2, 3]
    assert select_top_k([0.5, 0.5, 0.5], 2) == [0, 1]  # ties: lower layers
    assert select_contiguous([1.0, 0.0, 1.0], 1) == [0]
    selected, rule = select_layers(scores, 2, contiguous=True)
    assert selected == [1, 2]  # sums 1.0, 1.2, 1.1, 1.0, 1.05
    assert "contiguous" in rule
    with pytest.raises(SlamError, match="exceeds the model's 6 layers"):
        select_top_k(scores, 7)
    with pytest.raises(SlamError, match="at least 1"):
        select_contiguous(scores, 0)


def test_language_dependent_layer_scores_highest():
    """A layer whose neurons fire differently per language outranks layers that behave alike."""
    g = torch.Generator().manual_seed(3)
    shared = torch.rand(40, generator=g, dtype=torch.float64)
    probs = [shared.repeat(3, 1) for _ in range(4)]  # layers 0, 2, 3: same pattern in every language
    probs[1] = torch.rand(3, 40, generator=g, dtype=torch.float64) * torch.tensor([[1.0], [0.6], [0.3]])
    stats = layer_statistics(probs, LANGS, overlap_top_fraction=0.2)
    assert stats["mean_overlap_non_en"][0] == 1.0 and stats["mean_overlap_non_en"][1] < 1.0
    for score in ACTIVATION_SCORES:
        scores = activation_scores(stats, score)
        assert select_top_k(scores, 1) == [1], score
