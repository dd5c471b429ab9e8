"""Turn per-layer scores into a layer selection: top-k, or the best contiguous block of k."""

from __future__ import annotations

from collections.abc import Sequence

from slam_align.errors import SlamError


def _check(scores: Sequence[float], k: int) -> None:
    if k < 1:
        raise SlamError(f"--top-k must be at least 1, got {k}")
    if k > len(scores):
        raise SlamError(f"--top-k {k} exceeds the model's {len(scores)} layers")


def select_top_k(scores: Sequence[float], k: int) -> list[int]:
    """The k highest-scoring layers, ascending; ties go to the lower layer."""
    _check(scores, k)
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return sorted(order[:k])


def select_contiguous(scores: Sequence[float], k: int) -> list[int]:
    """The block of k adjacent layers with the largest summed score; ties go to the lowest block."""
    _check(scores, k)
    best_start, best_sum = 0, None
    for start in range(len(scores) - k + 1):
        total = sum(scores[start : start + k])
        if best_sum is None or total > best_sum:
            best_start, best_sum = start, total
    return list(range(best_start, best_start + k))


def select_layers(scores: Sequence[float], k: int, contiguous: bool = False) -> tuple[list[int], str]:
    """(selected layers, the rule in words) for ``layers.json``."""
    if contiguous:
        return (
            select_contiguous(scores, k),
            f"contiguous: the block of {k} adjacent layers with the largest sum of scores (ties: lowest block)",
        )
    return select_top_k(scores, k), f"top-k: the {k} layers with the highest scores (ties: lower layer)"
