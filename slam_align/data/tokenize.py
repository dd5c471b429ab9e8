"""Prompt-masked tokenisation and the padding collator used by training.

An example becomes ``prompt + target``: the prompt is the template rendered on the
instruction and input (joined as the template says), the target is the response followed
by EOS. The two parts are tokenised separately and concatenated, so the boundary is exact
(no BPE merge across it) and the loss covers the response only: prompt positions carry
label -100. The template decides whether the tokenizer's BOS goes before the prompt and
how an example longer than the cutoff is cut (:func:`truncate`); with
``llamafactory-default`` the result is LLaMA-Factory 0.5.3's, token for token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

IGNORE_INDEX = -100


def render_pair(example, template, tokenizer=None) -> tuple[str, str]:
    """(prompt, target) text of an ``Example``; a space separates them unless one side has it."""
    query = template.query(example.instruction, example.input)
    prompt = template.render(query, lang=example.lang, tokenizer=tokenizer)
    target = example.output
    if prompt and not prompt[-1].isspace() and target and not target[0].isspace():
        target = " " + target
    return prompt, target


def truncated_lengths(truncation: str, source: int, target: int, cutoff: int) -> tuple[int, int]:
    """How many prompt and answer tokens an example keeps within ``cutoff`` tokens."""
    if source + target <= cutoff:
        return source, target
    if truncation == "llamafactory-0.5.3":
        # llmtuner/data/utils.py:42-46 (infer_max_len, reserved_label_len=1), computed in the same
        # order so that the rounding is the same.
        keep_target = max(int(cutoff * (target / (source + target))), 1)
        return min(source, cutoff - keep_target), min(target, keep_target)
    # keep-answer: a short answer (under half the cutoff) stays whole; a short prompt stays whole;
    # else both in proportion (LLaMA-Factory 0.9's rule, data/processor/processor_utils.py:76-88).
    if 2 * target < cutoff:
        keep_target = target
    elif 2 * source < cutoff:
        keep_target = cutoff - source
    else:
        keep_target = max(int(cutoff * (target / (source + target))), 1)
    keep_target = min(keep_target, target, cutoff)
    return min(source, cutoff - keep_target), keep_target


def truncate(
    prompt: list[int], target: list[int], cutoff: int, truncation: str, marker_tokens: int = 0
) -> tuple[list[int], list[int]]:
    """(prompt, target) ids cut to at most ``cutoff`` tokens together, as ``truncation`` says.

    ``llamafactory-0.5.3`` cuts both on the right. ``keep-answer`` cuts the answer only when it
    is long (on the right), and the prompt in its middle: its start (BOS, header, the start of
    the question) and its last ``marker_tokens`` (the template's closing marker, "### Response:")
    stay, so that the answer still follows the marker it was trained after.
    """
    keep_source, keep_target = truncated_lengths(truncation, len(prompt), len(target), cutoff)
    target = target[:keep_target]
    if keep_source >= len(prompt):
        return prompt, target
    if truncation == "llamafactory-0.5.3":
        return prompt[:keep_source], target
    tail = min(marker_tokens, keep_source)
    return prompt[: keep_source - tail] + (prompt[len(prompt) - tail :] if tail else []), target


# Bounded memory on hostile input: a field of an example is cut to this many characters per
# token of --cutoff-len (at least MIN_FIELD_CHARS) *before* tokenising, so that one huge
# example (50 MB of text) never reaches the tokenizer whole. A token of a real vocabulary
# spans far fewer characters, so what survives the cutoff is unchanged except for how a
# very long example's budget is split between prompt and answer (docs/training.md).
CHARS_PER_TOKEN = 32
MIN_FIELD_CHARS = 1 << 16


def field_char_limit(cutoff_len: int) -> int:
    """The characters of one field (instruction, input, output) that tokenising ever sees."""
    return max(cutoff_len * CHARS_PER_TOKEN, MIN_FIELD_CHARS)


def bounded_example(example, cutoff_len: int):
    """``example`` with every text field cut to :func:`field_char_limit` characters."""
    limit = field_char_limit(cutoff_len)
    long = {
        f: getattr(example, f)[:limit]
        for f in ("instruction", "input", "output")
        if len(getattr(example, f) or "") > limit
    }
    return dataclasses.replace(example, **long) if long else example


def tokenize_examples(
    examples: Sequence, tokenizer, template, cutoff_len: int = 1024
) -> tuple[list[dict], int]:
    """Tokenise ``examples``; return (features, number dropped because nothing was left to learn).

    Each feature holds ``input_ids`` and ``labels`` (plain lists); the collator pads them.
    An example is dropped only when its target is empty and the tokenizer has no EOS.
    """
    pairs = [render_pair(bounded_example(e, cutoff_len), template, tokenizer) for e in examples]
    # Batched calls: the fast tokenizer's Rust loop, not one Python call per example.
    prompt_ids = tokenizer([p for p, _ in pairs], add_special_tokens=template.add_special_tokens)["input_ids"]
    target_ids = tokenizer([t for _, t in pairs], add_special_tokens=False)["input_ids"]
    marker = template.suffix
    marker_tokens = len(tokenizer(marker, add_special_tokens=False)["input_ids"]) if marker else 0
    eos = tokenizer.eos_token_id
    features, dropped = [], 0
    for p, t in zip(prompt_ids, target_ids):
        t = list(t) + ([eos] if eos is not None else [])
        if not t:
            dropped += 1  # nothing of the response to learn from
            continue
        p, t = truncate(list(p), t, cutoff_len, template.truncation, marker_tokens)
        features.append({"input_ids": p + t, "labels": [IGNORE_INDEX] * len(p) + t})
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
