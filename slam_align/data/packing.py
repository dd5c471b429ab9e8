"""Padding-free training: examples packed into rows of at most ``cutoff`` tokens.

A packed row is several tokenised examples one after the other. Nothing marks them as
separate except ``position_ids`` restarting at 0 for each example, and no ``attention_mask``:
that is the form Transformers reads as packed sequences (``masking_utils.
find_packed_sequence_indices``): SDPA and eager attention get a block-diagonal causal mask,
FlashAttention-2 its variable-length kernel, so no token attends to another example and
RoPE positions are those the example has alone. Transformers skips that detection when a
KV cache exists, and causal LMs make one whenever ``use_cache`` is on (their configs' default),
even in training: a packed batch therefore says ``use_cache=False`` (without it SDPA lets
examples attend to each other, silently; the equality test catches it). The first label of every example is -100
(``DataCollatorWithFlattening``'s separator), so the last token of one example is not trained
to predict the first of the next; it is never a prediction target unpacked either. The loss
is then the same mean over the same response tokens as the padded batch's
(``tests/test_packing.py`` checks loss and gradients).

Rows of one micro-batch are right-padded to the longest; the padding tail is a segment of
its own (positions restart at 0, labels -100), so it reaches no real token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from slam_align.data.tokenize import IGNORE_INDEX

# Architectures whose Transformers implementation builds the per-example mask from packed
# position ids (tests/test_packing.py checks each: loss and gradients packed == unpacked).
# GPT-2 and OPT (learned absolute positions, their own masks) do not, in Transformers 5.
PACKING_VERIFIED = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "mixtral",
    "qwen2_moe",
    "gpt_neox",
    "falcon",
)

# Key of the batch that carries the number of real (non-padding) tokens of a packed batch:
# packed batches have no attention mask to count them from; the trainer pops it.
REAL_TOKENS = "num_real_tokens"


def check_packable(config) -> None:
    """Refuse ``--packing`` for an architecture not known to keep packed examples apart."""
    from slam_align.errors import SlamError

    model_type = getattr(config, "model_type", None)
    if model_type not in PACKING_VERIFIED:
        raise SlamError(
            f"--packing: model type {model_type!r} is not known to keep packed examples apart "
            f"(verified: {', '.join(PACKING_VERIFIED)}); train it without --packing"
        )


def pack_features(features: Sequence[dict], cutoff: int) -> list[list[dict]]:
    """Rows of examples, each row at most ``cutoff`` tokens, by first-fit decreasing.

    Deterministic: ties keep the input order, which the caller has shuffled with its seed.
    An example longer than ``cutoff`` (tokenisation cuts them, so only by misuse) gets a row alone.
    """
    order = sorted(range(len(features)), key=lambda i: -len(features[i]["input_ids"]))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = len(features[i]["input_ids"])
        for r, free in enumerate(room):
            if n <= free:
                rows[r].append(i)
                room[r] -= n
                break
        else:
            rows.append([i])
            room.append(cutoff - n)
    return [[features[i] for i in row] for row in rows]


class PackedDataset(torch.utils.data.Dataset):
    """Packed rows (lists of features); ``__getitem__`` gives one row's features."""

    def __init__(self, features: Sequence[dict], cutoff: int):
        self.rows = pack_features(features, cutoff)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> list[dict]:
        return self.rows[i]


@dataclass
class PackedCollator:
    """A batch of packed rows: each flattened by Transformers' ``DataCollatorWithFlattening``
    (position ids restarting per example, -100 at each example's first label), then
    right-padded to the longest row with a padding segment of its own."""

    pad_token_id: int

    def __call__(self, rows: list[list[dict]]) -> dict[str, torch.Tensor]:
        from transformers import DataCollatorWithFlattening

        flatten = DataCollatorWithFlattening(return_tensors="pt", separator_id=IGNORE_INDEX)
        flat = [flatten([{"input_ids": f["input_ids"], "labels": f["labels"]} for f in row]) for row in rows]
        lengths = [int(f["input_ids"].shape[1]) for f in flat]
        width = max(lengths)
        n = len(rows)
        input_ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE_INDEX, dtype=torch.long)
        position_ids = torch.zeros((n, width), dtype=torch.long)
        for i, (f, k) in enumerate(zip(flat, lengths)):
            input_ids[i, :k] = f["input_ids"][0]
            labels[i, :k] = f["labels"][0]
            position_ids[i, :k] = f["position_ids"][0]
            position_ids[i, k:] = torch.arange(width - k)
        return {
            "input_ids": input_ids,
            "labels": labels,
            "position_ids": position_ids,
            "use_cache": False,  # a cache turns off the packed-sequence detection (module docstring)
            REAL_TOKENS: torch.tensor(sum(lengths)),
        }
