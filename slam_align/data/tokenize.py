"""Prompt-masked tokenisation and the padding collator used by training.

An example becomes ``prompt + target``: the prompt is the template rendered on the
instruction (and input), the target is the response followed by EOS. The two parts are
tokenised separately and concatenated, so the boundary is exact (no BPE merge across
it) and the loss covers the response only: prompt positions carry label -100.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


def render_pair(example, template, tokenizer=None) -> tuple[str, str]:
    """(prompt, target) text of an ``Example``; a space separates them unless one side has it."""
    prompt = template.render(example.query, lang=example.lang, tokenizer=tokenizer)
    target = example.output
    if prompt and not prompt[-1].isspace() and target and not target[0].isspace():
        target = " " + target
    return prompt, target


def tokenize_examples(
    examples: Sequence, tokenizer, template, cutoff_len: int = 1024
) -> tuple[list[dict], int]:
    """Tokenise ``examples``; return (features, number dropped because the prompt filled the cutoff).

    Each feature holds ``input_ids`` and ``labels`` (plain lists); the collator pads them.
    """
    pairs = [render_pair(e, template, tokenizer) for e in examples]
    # Batched calls: the fast tokenizer's Rust loop, not one Python call per example.
    prompt_ids = tokenizer([p for p, _ in pairs], add_special_tokens=True)["input_ids"]
    target_ids = tokenizer([t for _, t in pairs], add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    features, dropped = [], 0
    for p, t in zip(prompt_ids, target_ids):
        t = list(t) + ([eos] if eos is not None else [])
        ids = (list(p) + t)[:cutoff_len]
        labels = ([IGNORE_INDEX] * len(p) + t)[:cutoff_len]
        if all(label == IGNORE_INDEX for label in labels):
            dropped += 1  # nothing of the response left to learn from
            continue
        features.append({"input_ids": ids, "labels": labels})
    return features, dropped


class FeatureDataset(torch.utils.data.Dataset):
    """Tokenised features in memory (a list): no Arrow round-trip for small runs."""

    def __init__(self, features: list[dict]):
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict:
        return self.features[i]


@dataclass
class MaskedCollator:
    """Right-pads a batch: pad id for inputs, 0 for the attention mask, -100 for labels."""

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        length = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            m = self.pad_to_multiple_of
            length = (length + m - 1) // m * m
        n = len(features)
        input_ids = torch.full((n, length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((n, length), dtype=torch.long)
        for i, f in enumerate(features):
            k = len(f["input_ids"])
            input_ids[i, :k] = torch.tensor(f["input_ids"], dtype=torch.long)
            labels[i, :k] = torch.tensor(f["labels"], dtype=torch.long)
            attention_mask[i, :k] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def pad_token_id(tokenizer) -> int:
    """The tokenizer's pad id, else EOS (Llama-2 has no pad token), else 0."""
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return int(tid)
    return 0
