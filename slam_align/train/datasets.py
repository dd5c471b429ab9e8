"""Training data for a run: read, mix by weight, split for two-stage, tokenise.

All files are read and checked before any model is loaded, so bad data (a missing
field, an empty file, a non-JSON line) fails in seconds, naming file and line.

Mixing weights (``a.jsonl:0.7,b.jsonl:0.3``) are shares of the mixture: the mixture has
as many rows as all files together, and file *i* contributes ``round(w_i / sum(w) * N)``
rows, drawn without replacement (seeded), repeating the file's rows only when it is too
small. Without weights every row of every file is used once.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from slam_align.data.training import read_alpaca
from slam_align.errors import SlamError


def parse_data_spec(spec: str) -> tuple[str, float | None]:
    """'file.jsonl' or 'file.jsonl:0.7' -> (path, weight or None)."""
    path, sep, weight = spec.rpartition(":")
    if sep and path and not Path(spec).exists():
        try:
            w = float(weight)
        except ValueError:
            return spec, None
        if w <= 0:
            raise SlamError(f"data: weight of {path} must be positive, got {weight}")
        return path, w
    return spec, None


def parse_field_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        ours, sep, theirs = item.partition("=")
        if not sep or ours.strip() not in ("instruction", "input", "output"):
            raise SlamError(f"field-map: '{item}' should be instruction=NAME, input=NAME or output=NAME")
        out[ours.strip()] = theirs.strip()
    return out


def read_mixture(specs: list[str], field_map: dict[str, str] | None = None, seed: int = 0) -> list:
    """Read and mix the files named by ``specs`` (see module docstring)."""
    if not specs:
        raise SlamError("data: no training files given (--data FILE.jsonl)")
    parts = []
    for spec in specs:
        path, weight = parse_data_spec(spec)
        if Path(path).is_dir():  # a `slam data build` output directory
            path = str(Path(path) / "train.jsonl")
        rows = read_alpaca(path, field_map=field_map or None)
        if not rows:
            raise SlamError(f"{path}: no training examples (empty file)")
        parts.append((path, weight, rows))
    if all(w is None for _, w, _ in parts):
        return [r for _, _, rows in parts for r in rows]
    if any(w is None for _, w, _ in parts):
        raise SlamError("data: give a weight to every file or to none (a.jsonl:0.7,b.jsonl:0.3)")
    total_rows = sum(len(rows) for _, _, rows in parts)
    total_w = sum(w for _, w, _ in parts)
    rng = random.Random(seed)
    mixed = []
    for _, w, rows in parts:
        want = max(1, round(w / total_w * total_rows))
        order = []
        while len(order) < want:  # whole shuffled passes, then a partial one
            idx = list(range(len(rows)))
            rng.shuffle(idx)
            order += idx
        mixed += [rows[i] for i in order[:want]]
    return mixed


def split_by_kind(examples: list) -> tuple[list, list]:
    """Two-stage from one mixture: kind=alignment rows for stage 1, the others for stage 2."""
    stage1 = [e for e in examples if getattr(e, "kind", "") == "alignment"]
    stage2 = [e for e in examples if getattr(e, "kind", "") != "alignment"]
    if not stage1 or not stage2:
        raise SlamError(
            "two-stage: the data has no 'kind: alignment' rows or nothing else; "
            "give --stage1-data and --stage2-data instead"
        )
    return stage1, stage2


class FeatureDataset(torch.utils.data.Dataset):
    """Tokenised features in memory (a list): no Arrow round-trip for small runs."""

    def __init__(self, features: list[dict]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]

    def num_tokens(self) -> int:
        return sum(len(f["input_ids"]) for f in self.features)
