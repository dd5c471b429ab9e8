"""LAPE: language activation probability entropy (Tang et al., ACL 2024).

For every FFN neuron j of every layer, ``P[x, j]`` is the probability that it is active
on a token of language x. Normalised over languages, ``p[x, j] = P[x, j] / sum_x P[x, j]``
is a distribution whose entropy ``H_j = -sum_x p log p`` is low when the neuron fires
for one or a few languages only. Following the paper:

1. a neuron is a candidate only if, for at least one language, its activation
   probability exceeds the ``filter_rate`` quantile of all activation probabilities
   (all layers, neurons and languages together): rarely active neurons are noise;
2. the ``top_rate`` fraction of all neurons (over all layers) with the lowest entropy
   among the candidates are *language-specific*;
3. a language-specific neuron belongs to every language whose activation probability
   exceeds that same quantile.

The layer score is the number of language-specific neurons the layer holds.
"""

from __future__ import annotations

import torch

from slam_align.errors import SlamError


def lape_entropy(probs: torch.Tensor) -> torch.Tensor:
    """(num_langs, N) activation probabilities -> (N,) entropy over languages (nats).

    A neuron never active in any language has no distribution: its entropy is +inf so
    it is never called language-specific.
    """
    total = probs.sum(0)
    dist = probs / total.clamp(min=torch.finfo(probs.dtype).tiny)
    plogp = torch.where(dist > 0, dist * dist.clamp(min=torch.finfo(probs.dtype).tiny).log(), 0.0)
    ent = -plogp.sum(0)
    return torch.where(total > 0, ent, torch.full_like(ent, float("inf")))


def _quantile(values: torch.Tensor, q: float) -> float:
    # kthvalue on the flattened tensor: exact order statistic, no size limit (unlike torch.quantile).
    flat = values.flatten()
    k = min(max(1, round(q * flat.numel())), flat.numel())
    return flat.kthvalue(k).values.item()


def lape_select(probs: list[torch.Tensor], top_rate: float = 0.01, filter_rate: float = 0.95) -> dict:
    """Language-specific neurons per layer. ``probs``: per layer (num_langs, N_l) float64.

    Returns plain lists for JSON: ``specific_count[l]`` (the layer score),
    ``specific_per_lang[l][x]``, ``entropy_threshold`` (the largest selected entropy),
    ``activation_bar`` (the probability quantile), and the rates used.
    """
    if not 0 < top_rate <= 1:
        raise SlamError(f"LAPE top rate must be in (0, 1], got {top_rate}")
    if not 0 < filter_rate < 1:
        raise SlamError(f"LAPE filter rate must be in (0, 1), got {filter_rate}")
    if probs[0].shape[0] < 2:
        raise SlamError("LAPE needs at least two languages in --langs")
    all_probs = torch.cat(probs, dim=1)  # (num_langs, total neurons)
    bar = _quantile(all_probs, filter_rate)
    entropy = torch.cat([lape_entropy(p) for p in probs])
    candidate = (all_probs > bar).any(0)
    entropy = torch.where(candidate, entropy, torch.full_like(entropy, float("inf")))
    n_select = min(round(top_rate * entropy.numel()), int(candidate.sum()))
    # Stable sort: equal entropies are taken in (layer, neuron) order, deterministically.
    chosen = torch.sort(entropy, stable=True).indices[:n_select]
    specific = torch.zeros_like(candidate)
    specific[chosen] = True

    per_layer, per_lang, start = [], [], 0
    for p in probs:
        n = p.shape[1]
        s = specific[start : start + n]
        per_layer.append(int(s.sum()))
        per_lang.append(((p > bar) & s).sum(1).tolist())
        start += n
    return {
        "specific_count": per_layer,
        "specific_per_lang": per_lang,
        "num_selected": int(n_select),
        "entropy_threshold": entropy[chosen].max().item() if n_select else None,
        "activation_bar": bar,
        "top_rate": top_rate,
        "filter_rate": filter_rate,
    }
