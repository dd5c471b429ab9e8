"""Tokenise parallel questions, batch them per language, run the model once per batch.

Which tokens count: every token of the question, never a special token (BOS/EOS/pad:
identical in every language, they would only dilute the differences) and never padding.
With a prompt template (``--prompt``), the model reads the rendered prompt but only the
question's own tokens are counted (found by character offsets), so the template's shared
English words do not wash out the statistics.

Batches hold one language each and are padded on the right: with a causal model, real
tokens then never see padding and keep their positions, so a batch gives the same
activations as one question at a time (tested).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from slam_align.identify.stats import ActivationCounter, ActivationCounts

log = logging.getLogger(__name__)


@dataclass
class Encoded:
    input_ids: list[int]
    keep: list[bool]  # count this token?


@dataclass
class Batch:
    lang_index: int
    input_ids: torch.Tensor  # (batch, seq)
    attention_mask: torch.Tensor  # (batch, seq), 1 = real token
    count_mask: torch.Tensor  # (batch, seq) bool, True = count this token
    rows: tuple[int, ...] = ()  # each row's question index (batches are sorted by length)

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask.sum())


def encode_questions(
    tokenizer, questions: list[str], lang: str, prompt: str | None = None, max_length: int = 512
) -> list[Encoded]:
    """Token ids and the mask of counted tokens for each question."""
    texts, spans = questions, [None] * len(questions)
    if prompt:
        from slam_align.data.prompts import get_prompt

        template = get_prompt(prompt)
        texts = [template.render(q, lang=lang, tokenizer=tokenizer) for q in questions]
        spans = []
        for q, t in zip(questions, texts):
            start = t.find(q)
            spans.append((start, start + len(q)) if start >= 0 else None)
    want_offsets = prompt is not None and getattr(tokenizer, "is_fast", False)
    if prompt is not None and not want_offsets:
        log.warning("a slow tokenizer gives no character offsets: counting every token of the prompt")
    enc = tokenizer(
        texts,
        truncation=True,
        max_length=max_length,
        return_special_tokens_mask=True,
        return_offsets_mapping=want_offsets,
    )
    out, truncated = [], 0
    for i, ids in enumerate(enc["input_ids"]):
        special = enc["special_tokens_mask"][i]
        keep = [not s for s in special]
        if want_offsets and spans[i] is not None:
            s, e = spans[i]
            keep = [k and a < e and b > s for k, (a, b) in zip(keep, enc["offset_mapping"][i])]
        truncated += len(ids) >= max_length
        out.append(Encoded(list(ids), keep))
    if truncated:
        log.warning("%d %s question(s) were cut at --max-length %d tokens", truncated, lang, max_length)
    return out


def make_batches(encoded: list[list[Encoded]], batch_size: int, pad_id: int) -> list[Batch]:
    """One-language batches of up to ``batch_size`` questions of similar length, right-padded."""
    batches = []
    for lang_index, items in enumerate(encoded):
        order = sorted(range(len(items)), key=lambda i: len(items[i].input_ids))
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            chunk = [items[i] for i in indices]
            width = max(len(c.input_ids) for c in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attn = torch.zeros((len(chunk), width), dtype=torch.long)
            count = torch.zeros((len(chunk), width), dtype=torch.bool)
            for row, c in enumerate(chunk):
                n = len(c.input_ids)
                ids[row, :n] = torch.tensor(c.input_ids)
                attn[row, :n] = 1
                count[row, :n] = torch.tensor(c.keep, dtype=torch.bool)
            batches.append(Batch(lang_index, ids, attn, count, tuple(indices)))
    return batches


def backbone(model):
    """The decoder stack without the LM head: identification never needs the logits."""
    inner = getattr(model, getattr(model, "base_model_prefix", ""), None)
    return inner if isinstance(inner, torch.nn.Module) else model


def forward_batches(model, batches: list[Batch], on_batch=None, progress: bool = False) -> None:
    """One forward pass per batch (no KV cache, no gradients); ``on_batch(batch, device)`` runs first."""
    from tqdm.auto import tqdm

    net = backbone(model)
    device = next(model.parameters()).device
    with torch.inference_mode():
        for batch in tqdm(batches, desc="identify", unit="batch", disable=not progress):
            ids = batch.input_ids.to(device, non_blocking=True)
            attn = batch.attention_mask.to(device, non_blocking=True)
            if on_batch is not None:
                on_batch(batch, device)
            net(input_ids=ids, attention_mask=attn, use_cache=False)


def collect_counts(
    model,
    act_modules: list[list[torch.nn.Module]],
    batches: list[Batch],
    langs: list[str],
    threshold: float = 0.0,
    questions: list[int] | None = None,
    progress: bool = False,
    pooler=None,
) -> ActivationCounts:
    """Run every batch once with the counting hooks on; return the accumulated counts.

    ``pooler`` (a :class:`~slam_align.identify.similarity.HiddenStatePooler`, entered by the
    caller) also sees every batch, so the similarity statistic needs no second pass."""
    with ActivationCounter(act_modules, langs, threshold) as counter:

        def on_batch(batch: Batch, device) -> None:
            counter.set_batch(batch.count_mask.to(device, non_blocking=True), batch.lang_index)
            if pooler is not None:
                pooler.set_batch(batch.count_mask, batch.lang_index, batch.rows)

        forward_batches(model, batches, on_batch, progress=progress)
        return counter.result(questions)
