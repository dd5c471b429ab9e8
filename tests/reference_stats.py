"""A slow, obviously-correct reference for the statistics (used by the tests).

It captures the raw FFN activations of one question at a time (no batching, no padding)
and recomputes every statistic with plain Python loops over tokens and neurons, exactly
as the definitions in docs/identify.md read. Never use it on a real model: it is
quadratic in patience.
"""

from __future__ import annotations

import math

import torch


def capture_activations(
    model, act_modules, input_ids: list[int], keep: list[bool]
) -> list[list[list[float]]]:
    """Per layer: the activations of the kept tokens of one unpadded sequence, as lists of floats."""
    captured: list[list[torch.Tensor]] = [[] for _ in act_modules]
    handles = []
    for li, mods in enumerate(act_modules):
        for mod in mods:

            def hook(module, args, kwargs, li=li):
                x = args[0] if args else next(iter(kwargs.values()))
                captured[li].append(x.detach().reshape(-1, x.shape[-1]).float().cpu())

            handles.append(mod.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            model(input_ids=torch.tensor([input_ids], device=model.device), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    out = []
    for parts in captured:
        acts = torch.cat(parts, dim=1)  # several modules in a layer: neurons side by side
        out.append([acts[t].tolist() for t in range(acts.shape[0]) if keep[t]])
    return out


def reference_probabilities(acts: dict[str, list[list[list[list[float]]]]], langs: list[str], threshold=0.0):
    """acts[lang][question][layer][token][neuron] -> P[layer][lang][neuron] and token counts."""
    num_layers = len(next(iter(acts.values()))[0])
    probs, tokens = [], {}
    for layer in range(num_layers):
        per_lang = []
        for lang in langs:
            fires, n_tok = None, 0
            for question in acts[lang]:
                for token in question[layer]:
                    if fires is None:
                        fires = [0] * len(token)
                    n_tok += 1
                    for j, value in enumerate(token):
                        if value > threshold:
                            fires[j] += 1
            tokens[lang] = n_tok
            per_lang.append([f / n_tok for f in fires])
        probs.append(per_lang)
    return probs, tokens


def reference_layer_statistics(probs, langs, overlap_top_fraction=0.1) -> dict:
    en = langs.index("en")
    out = {"activated_count": [], "count_msd": [], "fraction_msd": [], "overlap_with_en": []}
    for per_lang in probs:
        n = len(per_lang[0])
        counts = [sum(p) for p in per_lang]
        fractions = [c / n for c in counts]
        out["activated_count"].append(counts)
        for key, vals in (("count_msd", counts), ("fraction_msd", fractions)):
            mean = sum(vals) / len(vals)
            out[key].append(sum((v - mean) ** 2 for v in vals) / len(vals))
        k = math.ceil(overlap_top_fraction * n)
        sets = [set(sorted(range(n), key=lambda j, p=p: (-p[j], j))[:k]) for p in per_lang]
        out["overlap_with_en"].append([len(s & sets[en]) / len(s | sets[en]) for s in sets])
    return out


def reference_lape(probs, top_rate=0.01, filter_rate=0.95) -> list[int]:
    """Number of language-specific neurons per layer."""
    flat = sorted(p for per_lang in probs for row in per_lang for p in row)
    bar = flat[min(max(1, round(filter_rate * len(flat))), len(flat)) - 1]
    candidates = []  # (entropy, global index, layer)
    index = 0
    for layer, per_lang in enumerate(probs):
        for j in range(len(per_lang[0])):
            column = [row[j] for row in per_lang]
            total = sum(column)
            if total > 0 and any(p > bar for p in column):
                entropy = -sum((p / total) * math.log(p / total) for p in column if p > 0)
                candidates.append((entropy, index, layer))
            index += 1
    n_select = min(round(top_rate * index), len(candidates))
    counts = [0] * len(probs)
    for _, _, layer in sorted(candidates)[:n_select]:
        counts[layer] += 1
    return counts
