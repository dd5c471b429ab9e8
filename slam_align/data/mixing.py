"""The one reader of training files for a run: ``--data a.jsonl:0.7,b.jsonl:0.3``.

``slam train`` (and anything else that trains) reads its data here; ``slam data build``
writes the ``train.jsonl`` these functions read. Every file is read and checked before
any model is loaded, so bad data (a missing field, an empty file, a non-JSON line) fails
in seconds, naming file and line.

A spec is ``PATH`` or ``PATH:WEIGHT``; ``PATH`` may be a ``slam data build`` directory
(its ``train.jsonl`` is read). Without weights every row of every file is used once, in
file order. With weights, they are shares of a mixture as large as all files together:
file *i* contributes ``round(w_i / sum(w) * N)`` rows, drawn without replacement (seeded),
repeating the file's rows only when it is too small; the mixture is then shuffled with
the same seed, so any prefix of it (``--limit``) holds every file in its share.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path

from slam_align.data.training import ALIGNMENT, Example, read_alpaca
from slam_align.errors import SlamError

FIELDS = ("instruction", "input", "output")


def parse_data_spec(spec) -> tuple[str, float | None]:
    """``'file.jsonl'``, ``'file.jsonl:0.7'`` or ``(path, weight)`` -> (path, weight or None)."""
    if isinstance(spec, tuple | list):
        path, weight = spec
        return str(path), _weight(str(path), weight)
    text = str(spec)
    path, sep, weight = text.rpartition(":")
    if sep and path and not Path(text).exists():
        try:
            float(weight)
        except ValueError:
            return text, None
        return path, _weight(path, weight)
    return text, None


def _weight(path: str, value) -> float | None:
    if value is None:
        return None
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise SlamError(f"data: weight of {path} must be a number, got {value!r}") from None
    if not w > 0 or w == float("inf"):
        raise SlamError(f"data: weight of {path} must be a positive finite number, got {value}")
    return w


def parse_field_map(items: Iterable[str]) -> dict[str, str]:
    """``["instruction=query", "output=response"]`` -> ``{"instruction": "query", ...}``."""
    out = {}
    for item in items:
        ours, sep, theirs = item.partition("=")
        if not sep or ours.strip() not in FIELDS or not theirs.strip():
            raise SlamError(f"field-map: '{item}' should be instruction=NAME, input=NAME or output=NAME")
        out[ours.strip()] = theirs.strip()
    return out


def read_training_files(
    specs: Iterable | dict, field_map: dict[str, str] | None = None, seed: int = 0
) -> list[Example]:
    """Read and mix the files named by ``specs`` (see the module docstring); a dict maps path -> weight."""
    items = list(specs.items()) if isinstance(specs, dict) else list(specs)
    if not items:
        raise SlamError("data: no training files given (--data FILE.jsonl)")
    parts = []
    for item in items:
        path, weight = parse_data_spec(item)
        p = Path(path).expanduser()
        rows = read_alpaca(p / "train.jsonl" if p.is_dir() else p, field_map=field_map or None)
        parts.append((weight, rows))
    if all(w is None for w, _ in parts):
        return [e for _, rows in parts for e in rows]
    if any(w is None for w, _ in parts):
        raise SlamError("data: give a weight to every file or to none (a.jsonl:0.7,b.jsonl:0.3)")
    rng = random.Random(seed)
    total = sum(len(rows) for _, rows in parts)
    total_w = sum(w for w, _ in parts)
    mixed: list[Example] = []
    for w, rows in parts:
        want = max(1, round(w / total_w * total))
        order: list[int] = []
        while len(order) < want:  # whole shuffled passes, then a partial one
            idx = list(range(len(rows)))
            rng.shuffle(idx)
            order += idx
        mixed += [rows[i] for i in order[:want]]
    rng.shuffle(mixed)
    return mixed


def split_by_kind(examples: list[Example]) -> tuple[list[Example], list[Example]]:
    """Two-stage from one mixture: ``kind: alignment`` rows for stage 1, the others for stage 2."""
    stage1 = [e for e in examples if e.kind == ALIGNMENT]
    stage2 = [e for e in examples if e.kind != ALIGNMENT]
    if not stage1 or not stage2:
        raise SlamError(
            "two-stage: the data has no 'kind: alignment' rows or nothing else; "
            "give --stage1-data and --stage2-data instead"
        )
    return stage1, stage2
