"""Generation backends for evaluation: Transformers (always) and vLLM (when installed).

Both take rendered prompts and return the continuation text cut where its run-on begins
(:func:`slam_align.evaluate.extract.run_on_start`: the first stop sequence, except a
question marker with no digit before it), greedily decoded. The Transformers backend batches prompts of similar length
(sorted, left-padded), uses the KV cache, stops each row at EOS or a stop string, and runs
in bf16 on a GPU. vLLM does its own continuous batching; the outputs have the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from slam_align.errors import SlamError
from slam_align.evaluate.extract import cut_at_stop, is_question_marker

log = logging.getLogger(__name__)

BACKENDS = ("transformers", "vllm")


@dataclass(frozen=True)
class Generation:
    text: str  # the continuation, cut at the first stop sequence
    num_tokens: int  # tokens generated (before the cut)


def load_model_for_generation(model: str, dtype: str = "auto", device: str | None = None):
    """The model in eval mode on ``device``; ``auto`` dtype: bf16 on a GPU, fp32 on a CPU."""
    from slam_align.models.loading import load_model, resolve_device, resolve_dtype

    device = resolve_device(device)
    m = load_model(model, dtype=resolve_dtype(dtype, device), device=device)
    m.eval()
    return m


class Backend:
    """What both engines share: a tokenizer, prompt lengths, and ``generate_batch``."""

    tokenizer = None

    def prompt_lengths(self, prompts: Sequence[str], add_special_tokens: bool = True) -> list[int]:
        ids = self.tokenizer(list(prompts), add_special_tokens=add_special_tokens)["input_ids"]
        return [len(x) for x in ids]

    def generate_batch(
        self, prompts: Sequence[str], max_new_tokens: int, stop: Sequence[str] = (), add_special_tokens=True
    ) -> list[Generation]:
        raise NotImplementedError


class TransformersBackend(Backend):
    """Batched greedy generation with ``model.generate`` (left padding, KV cache, stop strings)."""

    name = "transformers"

    def __init__(
        self, model: str, dtype: str = "auto", device: str | None = None, model_obj=None, tokenizer=None
    ):
        from slam_align.models.loading import load_tokenizer

        # generation appends on the right: prompts must end together (left padding)
        self.tokenizer = tokenizer or load_tokenizer(model, padding_side="left")
        self.tokenizer.padding_side = "left"
        self.model = model_obj if model_obj is not None else load_model_for_generation(model, dtype, device)
        self.device = next(self.model.parameters()).device

    def generate_batch(
        self, prompts: Sequence[str], max_new_tokens: int, stop: Sequence[str] = (), add_special_tokens=True
    ) -> list[Generation]:
        import torch

        tok = self.tokenizer
        enc = tok(list(prompts), return_tensors="pt", padding=True, add_special_tokens=add_special_tokens)
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        kwargs = dict(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=True,
            pad_token_id=tok.pad_token_id,
            eos_token_id=self.model.generation_config.eos_token_id or tok.eos_token_id,
        )
        # Sampling settings a checkpoint's generation_config may carry would only warn under greedy.
        for key in ("temperature", "top_p", "top_k"):
            kwargs[key] = None
        if stop:
            kwargs["stopping_criteria"] = _run_on_criteria(tok, list(stop), enc["input_ids"].shape[1])
        with torch.inference_mode():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        pad, eos = tok.pad_token_id, _as_set(kwargs["eos_token_id"])
        results = []
        for row in new.tolist():
            n = _generated_length(row, pad, eos)
            text = tok.decode(row[:n], skip_special_tokens=True)
            results.append(Generation(cut_at_stop(text, stop), n))
        return results


def _run_on_criteria(tokenizer, stop: list[str], prompt_width: int):
    """Stop a row where its run-on begins: at a stop string, unless it is a question marker
    with no digit generated before it (the model restating the question before solving it)."""
    from transformers import StoppingCriteria, StoppingCriteriaList
    from transformers.generation import StopStringCriteria

    class RunOnCriteria(StoppingCriteria):
        def __init__(self):
            self.markers = StopStringCriteria(tokenizer, stop)  # fast: token-level, no decoding

        def __call__(self, input_ids, scores, **kwargs):
            hit = self.markers(input_ids, scores, **kwargs)
            for i in hit.nonzero().flatten().tolist():  # rare: decode only where a marker ends
                text = tokenizer.decode(input_ids[i, prompt_width:], skip_special_tokens=True)
                if cut_at_stop(text, stop) == text:  # no marker that counts (yet)
                    hit[i] = False
            return hit

    return StoppingCriteriaList([RunOnCriteria()])


def _as_set(x) -> set[int]:
    if x is None:
        return set()
    return set(x) if isinstance(x, list | tuple | set) else {int(x)}


def _generated_length(row: list[int], pad: int | None, eos: set[int]) -> int:
    """Tokens up to and including the first EOS; trailing padding of finished rows excluded."""
    for i, t in enumerate(row):
        if t in eos:
            return i + 1
    n = len(row)
    while n and pad is not None and row[n - 1] == pad and pad not in eos:
        n -= 1
    return n


class VLLMBackend(Backend):
    """vLLM's offline engine: greedy ``SamplingParams`` with the same stop strings."""

    name = "vllm"

    def __init__(self, model: str, dtype: str = "auto", tensor_parallel: int = 1):
        try:
            from vllm import LLM
        except ImportError:
            raise SlamError(
                "--backend vllm needs the vllm package, which is not installed; "
                "pip install 'slam-align[vllm]' or use --backend transformers"
            ) from None
        vdtype = {"auto": "auto", "bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}.get(dtype, dtype)
        self.llm = LLM(model=model, dtype=vdtype, tensor_parallel_size=tensor_parallel, seed=0)
        self.tokenizer = self.llm.get_tokenizer()

    def generate_batch(
        self, prompts: Sequence[str], max_new_tokens: int, stop: Sequence[str] = (), add_special_tokens=True
    ) -> list[Generation]:
        from vllm import SamplingParams

        # vLLM stops at any occurrence of a stop string: question markers are left out (a model may
        # restate the question under one before solving it) and cut afterwards where they count.
        hard = [s for s in stop if not is_question_marker(s)]
        params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens, stop=hard or None)
        if add_special_tokens:
            outputs = self.llm.generate(list(prompts), params, use_tqdm=False)
        else:  # chat-template prompts already hold BOS: pass token ids so none is added
            ids = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
            outputs = self.llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=False)
        return [
            Generation(cut_at_stop(o.outputs[0].text, stop), len(o.outputs[0].token_ids)) for o in outputs
        ]


def make_backend(
    name: str, model: str, dtype: str = "auto", device: str | None = None, tensor_parallel: int = 1
):
    if name == "transformers":
        return TransformersBackend(model, dtype=dtype, device=device)
    if name == "vllm":
        return VLLMBackend(model, dtype=dtype, tensor_parallel=tensor_parallel)
    raise SlamError(f"unknown --backend '{name}'; expected one of: {', '.join(BACKENDS)}")


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar prompt length, longest first.

    Similar lengths mean little padding; longest first means an out-of-memory error
    shows up in the first batch, not after an hour.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]
