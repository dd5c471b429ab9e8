"""``slam identify`` on tiny random models of real architectures over real MGSM questions."""

from __future__ import annotations

import json

import pytest
import torch
from reference_stats import (
    capture_activations,
    reference_lape,
    reference_layer_statistics,
    reference_probabilities,
)

from slam_align.errors import SlamError
from slam_align.identify.collect import collect_counts, encode_questions, make_batches
from slam_align.identify.identify import IdentifyOptions, identify

LANGS = ["en", "de", "bn"]


def _options(model_dir, shared_data, out, **kw) -> IdentifyOptions:
    base = dict(
        model=str(model_dir),
        output=str(out),
        benchmark="mgsm",
        data_dir=str(shared_data),
        langs=LANGS,
        limit=3,
        top_k=2,
        plots=False,
        progress=False,
        batch_size=2,
    )
    return IdentifyOptions(**{**base, **kw})


def _load(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(model_dir)).eval(), AutoTokenizer.from_pretrained(
        str(model_dir)
    )


@pytest.mark.parametrize("model_type", ["llama", "gpt2", "gpt_neox"])
def test_statistics_match_slow_reference(model_type, tiny_model_factory, shared_data, tmp_path):
    """identify()'s batched, padded, on-device statistics equal a per-question, per-token Python loop."""
    from slam_align.data.benchmarks import load_benchmark
    from slam_align.models.architectures import find_layers

    model_dir = tiny_model_factory(model_type)
    result = identify(_options(model_dir, shared_data, tmp_path / "run", method="lape", score="overlap"))

    model, tok = _load(model_dir)
    mods = [info.ffn_act_modules for info in find_layers(model)]
    problems = load_benchmark("mgsm", LANGS, shared_data, limit=3)
    acts = {lang: [] for lang in LANGS}
    for p in problems:
        (enc,) = encode_questions(tok, [p.question], p.lang)
        acts[p.lang].append(capture_activations(model, mods, enc.input_ids, enc.keep))
    ref_probs, ref_tokens = reference_probabilities(acts, LANGS)
    ref = reference_layer_statistics(ref_probs, LANGS, overlap_top_fraction=0.1)

    assert result["num_tokens"] == ref_tokens
    stats = result["activation"]
    for key in ("activated_count", "count_msd", "fraction_msd", "overlap_with_en"):
        fast = torch.tensor(stats[key], dtype=torch.float64)
        slow = torch.tensor(ref[key], dtype=torch.float64)
        assert torch.allclose(fast, slow, rtol=1e-9, atol=1e-12), key
    assert result["lape"]["specific_count"] == reference_lape(ref_probs, 0.01, 0.95)
    assert result["scores"] == [float(c) for c in result["lape"]["specific_count"]]
    assert stats["scores"]["overlap"] == pytest.approx([1 - m for m in stats["mean_overlap_non_en"]])


@pytest.mark.parametrize("model_type", ["llama", "gpt2"])
def test_padding_does_not_change_counts(model_type, tiny_model_factory, shared_data):
    from slam_align.data.benchmarks import load_benchmark
    from slam_align.models.architectures import find_layers

    model, tok = _load(tiny_model_factory(model_type))
    mods = [info.ffn_act_modules for info in find_layers(model)]
    problems = load_benchmark("mgsm", LANGS, shared_data, limit=5)
    encoded = [
        encode_questions(tok, [p.question for p in problems if p.lang == lang], lang) for lang in LANGS
    ]
    one = collect_counts(model, mods, make_batches(encoded, 1, tok.pad_token_id), LANGS)
    batches = make_batches(encoded, 5, tok.pad_token_id)
    assert any(not b.attention_mask.all() for b in batches)  # padding really happens
    padded = collect_counts(model, mods, batches, LANGS)
    assert one.tokens.tolist() == padded.tokens.tolist()
    for a, b in zip(one.fires, padded.fires):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "model_type", ["qwen2", "mistral", "gemma", "phi3", "opt", "bloom", "falcon", "qwen2_moe"]
)
def test_other_architectures(model_type, tiny_model_factory, shared_data, tmp_path):
    result = identify(_options(tiny_model_factory(model_type), shared_data, tmp_path / "run", limit=2))
    n = result["num_layers"]
    assert len(result["scores"]) == n == len(result["activation"]["activated_count"])
    assert len(result["selected"]) == 2 and all(0 <= i < n for i in result["selected"])
    assert all(c > 0 for row in result["activation"]["activated_count"] for c in row)
    if model_type == "qwen2_moe":
        assert "shared expert" in result["notes"][0]


def test_fused_moe_is_a_clear_error(tiny_model_factory, shared_data, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SlamError, match="not supported for mixtral.*--layers"):
        identify(_options(tiny_model_factory("mixtral"), shared_data, out))
    assert not out.exists()  # nothing half-made


def test_run_directory_and_prompt(tiny_llama_dir, shared_data, tmp_path):
    raw = identify(_options(tiny_llama_dir, shared_data, tmp_path / "raw", plots=True, contiguous=True))
    out = tmp_path / "raw"
    for name in ("layers.json", "README.md", "config.yaml", "metrics.json", "timing.json"):
        assert (out / name).is_file(), name
    for name in ("layers_curves.png", "layers_heatmap.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    on_disk = json.loads((out / "layers.json").read_text())
    assert on_disk["selected"] == raw["selected"]
    assert raw["selected"][1] == raw["selected"][0] + 1  # contiguous
    assert raw["selection"]["rule"] == "contiguous"
    assert "Selected layers" in (out / "README.md").read_text()

    templated = identify(_options(tiny_llama_dir, shared_data, tmp_path / "prompt", prompt="alpaca"))
    # The model reads the whole Alpaca prompt but only the question's own tokens are counted.
    for lang in LANGS:
        assert abs(templated["num_tokens"][lang] - raw["num_tokens"][lang]) <= 2 * 3
    assert templated["activation"]["activated_count"] != raw["activation"]["activated_count"]


def test_jsonl_benchmark_with_synthetic_languages(tiny_llama_dir, tmp_path):
    rows = []
    for i in range(3):
        rows.append(
            {"lang": "en", "index": i, "question": f"Tom has {i + 2} apples. How many?", "answer": i + 2}
        )
        rows.append(
            {"lang": "syn-de", "index": i, "question": f"Tom hat {i + 2} Äpfel. Wie viele?", "answer": i + 2}
        )
        rows.append({"lang": "syn-bn", "index": i, "question": f"টম {i + 2} আপেল আছে। কত?", "answer": i + 2})
    path = tmp_path / "heldout.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = identify(
        IdentifyOptions(
            model=str(tiny_llama_dir),
            output=str(tmp_path / "run"),
            benchmark=f"jsonl:{path}",
            langs=["en", "syn-de", "syn-bn"],
            top_k=1,
            plots=False,
            progress=False,
        )
    )
    assert result["langs"] == ["en", "syn-de", "syn-bn"]
    assert result["num_questions"] == {"en": 3, "syn-de": 3, "syn-bn": 3}
    every = identify(
        IdentifyOptions(
            model=str(tiny_llama_dir),
            output=str(tmp_path / "all"),
            benchmark=f"jsonl:{path}",
            langs=["all"],
            method="lape",
            top_k=1,
            plots=False,
            progress=False,
        )
    )
    assert every["langs"] == ["en", "syn-de", "syn-bn"]  # the file's languages, in file order
    assert every["num_tokens"] == result["num_tokens"]


def test_bad_input(tiny_llama_dir, shared_data, tmp_path):
    with pytest.raises(SlamError, match="no 'en'"):
        identify(_options(tiny_llama_dir, shared_data, tmp_path / "a", langs=["de", "bn"]))
    with pytest.raises(SlamError, match="exceeds the model's 4 layers"):
        identify(_options(tiny_llama_dir, shared_data, tmp_path / "b", top_k=5))
    assert not (tmp_path / "b").exists()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "keep.txt").write_text("x")
    with pytest.raises(SlamError, match="not empty"):
        identify(_options(tiny_llama_dir, shared_data, tmp_path / "c"))


def test_cli_feeds_train_layers(cli, tiny_llama_dir, shared_data, tmp_path):
    from slam_align.models.layers import parse_layers

    out = tmp_path / "run"
    proc = cli(
        "identify",
        "--model",
        tiny_llama_dir,
        "--benchmark",
        "mgsm",
        "--data-dir",
        shared_data,
        "--langs",
        "en,de,zh,bn",
        "--limit",
        "3",
        "--method",
        "lape",
        "--top-k",
        "2",
        "--no-plots",
        "--output",
        out,
    )
    assert "selected layers:" in proc.stdout
    layers = json.loads((out / "layers.json").read_text())
    assert layers["method"] == "lape" and layers["langs"] == ["en", "de", "zh", "bn"]
    assert len(layers["scores"]) == layers["num_layers"] == 4
    assert parse_layers(f"auto:{out / 'layers.json'}", 4) == layers["selected"]

    bad = cli(
        "identify", "--model", tiny_llama_dir, "--langs", "de,bn", "--output", tmp_path / "x", check=False
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("error: --langs de,bn has no 'en'")
    assert not (tmp_path / "x").exists()


def _similarity_rows(tmp_path, copy_of_en: str):
    """Parallel questions in en, a verbatim copy of en (``copy_of_en``) and a different language."""
    rows = []
    for i in range(5):
        en = f"Tom has {i + 2} apples. Ann gives him {i} more. How many apples does Tom have?"
        rows.append({"lang": "en", "index": i, "question": en, "answer": 2 * i + 2})
        rows.append({"lang": copy_of_en, "index": i, "question": en, "answer": 2 * i + 2})
        rows.append({"lang": "syn-bn", "index": i, "question": f"টম {i + 2} আপেল আছে। কত?", "answer": i})
    path = tmp_path / "parallel.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_similarity_to_english_is_measured_per_layer(tiny_llama_dir, tmp_path):
    """A language whose text IS English scores 1 in every layer; the result matches a hand
    computation from the model's own hidden states, whatever the batch size."""
    from slam_align.identify.similarity import cross_lingual_similarity

    path = _similarity_rows(tmp_path, "syn-copy")
    langs = ["en", "syn-copy", "syn-bn"]
    results = []
    for batch_size in (1, 3):
        results.append(
            identify(
                IdentifyOptions(
                    model=str(tiny_llama_dir),
                    output=str(tmp_path / f"run{batch_size}"),
                    benchmark=f"jsonl:{path}",
                    langs=langs,
                    top_k=1,
                    batch_size=batch_size,
                    progress=False,
                )
            )["similarity"]
        )
    sim = results[0]
    model, tok = _load(tiny_llama_dir)
    n_layers = model.config.num_hidden_layers
    assert sim["per_lang"]["syn-copy"] == pytest.approx([1.0] * n_layers, abs=1e-5)
    assert all(v < 0.99 for v in sim["per_lang"]["syn-bn"])
    for a, b in zip(results[0]["per_lang"]["syn-bn"], results[1]["per_lang"]["syn-bn"]):
        assert a == pytest.approx(b, abs=1e-4)
    # Hand computation: mean-pool each question's non-special tokens at every layer's output.
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    pooled = [[{} for _ in langs] for _ in range(n_layers)]
    with torch.no_grad():
        for r in rows:
            enc = tok(r["question"], return_tensors="pt", return_special_tokens_mask=True)
            keep = ~enc.pop("special_tokens_mask")[0].bool()
            states = model(**enc, output_hidden_states=True).hidden_states
            for layer in range(n_layers - 1):  # the last entry is after the final norm
                pooled[layer][langs.index(r["lang"])][r["index"]] = states[layer + 1][0][keep].mean(0)
    hand = cross_lingual_similarity(pooled[:-1], langs)
    assert sim["per_lang"]["syn-bn"][:-1] == pytest.approx(hand["per_lang"]["syn-bn"], abs=1e-4)
    run = tmp_path / "run1"
    assert json.loads((run / "similarity.json").read_text()) == sim
    assert (run / "similarity.png").read_bytes()[:4] == b"\x89PNG"
    assert "Cross-lingual similarity" in (run / "README.md").read_text()
    # --no-similarity: not measured, no file, the layer statistics unchanged.
    off = identify(
        IdentifyOptions(
            model=str(tiny_llama_dir),
            output=str(tmp_path / "off"),
            benchmark=f"jsonl:{path}",
            langs=langs,
            top_k=1,
            batch_size=1,
            similarity=False,
            progress=False,
        )
    )
    assert "similarity" not in off and not (tmp_path / "off" / "similarity.json").exists()
    on_layers = json.loads((run / "layers.json").read_text())
    off_layers = json.loads((tmp_path / "off" / "layers.json").read_text())
    assert off_layers["selected"] == on_layers["selected"] and off_layers["scores"] == on_layers["scores"]
    assert "similarity" not in off_layers
