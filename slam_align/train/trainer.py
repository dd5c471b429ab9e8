"""The one Trainer set-up every method shares (Transformers ``Trainer``, no hand-written loop).

The engines (DDP under ``torchrun`` / ``accelerate launch``, DeepSpeed ZeRO, FSDP) come
from Transformers/accelerate; here we only translate ``TrainOptions`` into
``TrainingArguments`` and check what matters for selective tuning: the optimizer holds
the trainable parameters only (``Trainer.create_optimizer`` filters on ``requires_grad``),
so frozen tensors get neither gradients nor optimizer state.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from slam_align.data.packing import REAL_TOKENS, PackedCollator
from slam_align.data.tokenize import MaskedCollator, pad_token_id
from slam_align.errors import SlamError
from slam_align.io import atomic_write_json
from slam_align.train.engines import Engine, launched_world_size, resolve_engine, training_kwargs


def accumulation_steps(options) -> int:
    """Gradient accumulation: given, or derived from the effective (global) batch size.

    The launcher's process count is all there is before the Trainer exists; ``engines.attach``
    then refuses a launch whose Trainer does not see the same number of processes."""
    if not options.effective_batch_size:
        return options.gradient_accumulation_steps
    processes = launched_world_size()
    per_step = options.per_device_train_batch_size * processes
    if options.effective_batch_size % per_step:
        raise SlamError(
            f"effective-batch-size {options.effective_batch_size} is not a multiple of "
            f"micro-batch {options.per_device_train_batch_size} x {processes} processes"
        )
    return options.effective_batch_size // per_step


def training_arguments(
    options, output_dir: str | Path, seed: int | None = None, engine: Engine | None = None, model_config=None
):
    """``TrainingArguments`` for ``options``. Creating them opens the process group of a
    multi-process launch and, under ZeRO-3, makes ``from_pretrained`` load partitioned: create
    them before loading the model (:mod:`slam_align.train.engines`)."""
    from transformers import TrainingArguments

    engine = engine or resolve_engine(options)
    cuda = torch.cuda.is_available()
    kwargs = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=options.per_device_train_batch_size,
        gradient_accumulation_steps=accumulation_steps(options),
        max_steps=options.max_steps,
        num_train_epochs=options.num_train_epochs,
        learning_rate=options.learning_rate,
        lr_scheduler_type=options.lr_scheduler_type,
        # Transformers 5 reads a float warmup_steps below 1 as a fraction of the total steps
        # (its separate warmup_ratio is deprecated): our --warmup-ratio is exactly that.
        warmup_steps=options.warmup_ratio,
        weight_decay=options.weight_decay,
        max_grad_norm=options.max_grad_norm,
        seed=options.seed if seed is None else seed,
        bf16=options.bf16,
        logging_strategy="steps",
        logging_steps=options.logging_steps,
        save_strategy="steps" if options.save_steps > 0 else "no",
        save_steps=max(options.save_steps, 1),
        save_total_limit=options.save_total_limit,
        report_to=options.report_to,
        use_liger_kernel=options.use_liger_kernel,
        disable_tqdm=not options.progress,
        include_num_input_tokens_seen="non_padding",
        remove_unused_columns=False,  # our features are exactly the model's inputs
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        # Every trainable parameter is used in every step: no unused-parameter search.
        ddp_find_unused_parameters=False,
        fsdp=options.fsdp or None,
        fsdp_config=(engine.fsdp_config or None) if options.fsdp else None,
        **training_kwargs(engine, model_config),
    )
    if options.optim:
        kwargs["optim"] = options.optim
    if options.group_by_length:
        kwargs["train_sampling_strategy"] = "group_by_length"
    if options.val_size > 0:
        kwargs.update(
            eval_strategy="steps",
            eval_steps=options.eval_steps,
            per_device_eval_batch_size=options.per_device_train_batch_size,
        )
    if options.gradient_checkpointing:
        # Non-reentrant checkpointing works when a block's input does not require grad
        # (frozen embeddings); apply_plan also enables input grads for the reentrant kind.
        kwargs["activation_checkpointing"] = True
        kwargs["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    return TrainingArguments(**kwargs)


def _trainer_classes():
    from transformers import Trainer, TrainerCallback

    class SlamTrainer(Trainer):
        """The stock Trainer; partially trainable fused tensors get no weight decay, and the
        positions computed are counted beside the real tokens (the padding share)."""

        no_decay: frozenset = frozenset()
        positions_seen: int = 0
        _real_tokens = None

        def get_decay_parameter_names(self, model) -> list[str]:
            return [n for n in super().get_decay_parameter_names(model) if n not in self.no_decay]

        def _prepare_inputs(self, inputs):
            # Packed batches bring their real-token count (they have no attention mask to
            # count it from); it is not a model input. Training and evaluation both pass here.
            self._real_tokens = inputs.pop(REAL_TOKENS, None)
            return super()._prepare_inputs(inputs)

        def _track_num_input_tokens(self, inputs):
            if "attention_mask" in inputs:
                real = inputs["attention_mask"].sum()
            elif self._real_tokens is not None:
                real = self._real_tokens
            else:
                real = inputs["input_ids"].numel()
            counts = torch.stack(
                [torch.as_tensor(real).reshape(()), torch.as_tensor(inputs["input_ids"].numel())]
            ).to(device=self.args.device, dtype=torch.int64)
            real, positions = self.accelerator.gather(counts).view(-1, 2).sum(0).tolist()
            self.state.num_input_tokens_seen += real
            self.positions_seen += positions

    class RestoreFrozenSlices(TrainerCallback):
        """Puts the frozen halves of fused tensors back after every optimizer step."""

        def __init__(self, frozen):
            self.frozen = frozen

        def on_step_end(self, args, state, control, **kwargs):
            self.frozen.restore()

    class RecordElapsed(TrainerCallback):
        """Writes the stage's wall time so far into every checkpoint it saves, so that the
        timing of a resumed run counts the time before the interruption too."""

        def __init__(self, before: float):
            self.before = before
            self.t0 = time.perf_counter()

        def seconds(self) -> float:
            return self.before + time.perf_counter() - self.t0

        def on_save(self, args, state, control, **kwargs):
            checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if state.is_world_process_zero and checkpoint.is_dir():
                atomic_write_json(checkpoint / ELAPSED_FILE, {"wall_seconds": self.seconds()})

    return SlamTrainer, RestoreFrozenSlices, RecordElapsed


# In every checkpoint: the stage's wall seconds until it was saved (see RecordElapsed).
ELAPSED_FILE = "slam_elapsed.json"


def elapsed_before(checkpoint: Path | None) -> float:
    """Wall seconds a stage had run when ``checkpoint`` was saved (0 when unknown)."""
    if checkpoint is None:
        return 0.0
    try:
        return float(json.loads((checkpoint / ELAPSED_FILE).read_text(encoding="utf-8"))["wall_seconds"])
    except (OSError, ValueError, KeyError, TypeError):  # saved by a killed process: unknown
        return 0.0


def build_trainer(
    model,
    tokenizer,
    dataset,
    options,
    output_dir,
    frozen=None,
    seed: int | None = None,
    args=None,
    eval_dataset=None,
    resume_from: Path | None = None,
):
    """A Trainer for ``model`` (already frozen by its recipe: ``frozen`` is the
    :class:`~slam_align.models.apply_plan.FrozenParams` handle) on a tokenised dataset
    (``--packing``: a :class:`~slam_align.data.packing.PackedDataset`, else features);
    ``args``: the ``TrainingArguments`` made before the model was loaded (else made here);
    ``resume_from``: the checkpoint it continues (its wall time so far is counted on).
    ``stage_seconds(trainer)`` is the stage's wall time, including before a resume."""
    SlamTrainer, RestoreFrozenSlices, RecordElapsed = _trainer_classes()
    if args is None:
        args = training_arguments(options, output_dir, seed=seed)
    clock = RecordElapsed(elapsed_before(resume_from))
    if not any(p.requires_grad for p in model.parameters()):
        raise SlamError("nothing to train: the plan left every parameter frozen")
    partial = frozen.plan.partial if frozen is not None and frozen.plan.method != "lora" else {}
    trainer = SlamTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        data_collator=(PackedCollator if options.packing else MaskedCollator)(pad_token_id(tokenizer)),
        processing_class=tokenizer,
        # Fused gate_up under ``ffn``: the plan's gradient hook keeps AdamW off the frozen gate
        # half; putting it back after every step makes that exact for any optimizer.
        callbacks=[clock] + ([RestoreFrozenSlices(frozen)] if partial else []),
    )
    trainer.slam_clock = clock
    trainer.no_decay = frozenset(partial)
    if not options.progress:
        # Without progress bars the Trainer prints every log dict to stdout instead; the loss
        # curve is in metrics.json already, so keep quiet runs quiet (the demo calls train() often).
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def optimizer_state_bytes(trainer) -> int:
    """Bytes held by this process' optimizer state tensors (AdamW: two per trainable element;
    under ZeRO and FSDP this process' shard)."""
    opt = getattr(trainer, "optimizer", None)
    opt = getattr(opt, "optimizer", opt)  # accelerate wraps it
    total = 0
    for state in getattr(opt, "state", {}).values():
        for v in state.values():
            if torch.is_tensor(v):
                v = v.to_local() if hasattr(v, "to_local") else v  # FSDP2: a DTensor shard
                total += v.numel() * v.element_size()
    return total


def peak_memory() -> dict:
    if torch.cuda.is_available():
        return {
            "peak_memory_bytes": int(torch.cuda.max_memory_allocated()),
            "peak_memory_kind": "gpu_max_allocated",
        }
    import resource

    # Linux reports ru_maxrss in KiB; it is the process' peak so far (loading included).
    return {
        "peak_memory_bytes": int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,
        "peak_memory_kind": "cpu_max_rss",
    }


def stage_seconds(trainer) -> float:
    """The stage's wall seconds: this process' part plus the part before a resume."""
    return trainer.slam_clock.seconds()
