"""``slam train``: run a recipe's stages on the shared Trainer set-up and account for them.

Run directory (``--output DIR``, see :mod:`slam_align.io` for the rules)::

    run.json, config.yaml, environment.json   what wrote it (and its status), the options, versions
    checkpoint-N/      Trainer checkpoints (two-stage: stage1/checkpoint-N, stage2/checkpoint-N)
    stage1/final/      two-stage only: the model after stage 1
    final/             the trained model, base dtype (+ slam_delta.safetensors for subset methods,
                       + slam_train.json: which run made it, what it trained, how long it took)
    adapter/           lora only: the PEFT adapter (final/ holds the merged model)
    timing.json        wall time per stage, steps, tokens, tokens/s, parameters, optimizer bytes, memory
    metrics.json       the loss curve per stage
    loss.png, README.md

``timing.json`` is rewritten after each stage with ``complete: false`` until the last one,
which is how ``--resume`` knows what is already done.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import option, options_to_dict
from slam_align.data.mixing import parse_field_map, read_training_files, split_by_kind
from slam_align.data.prompts import DEFAULT_PROMPT, get_prompt
from slam_align.errors import SlamError
from slam_align.io import (
    atomic_write_json,
    check_run_dir,
    open_run_dir,
    read_json_object,
    read_yaml,
)
from slam_align.models.freeze_plan import PlanSpec
from slam_align.models.layers import check_layers_spec
from slam_align.train import engines
from slam_align.train.delta import DELTA_FILE, MANIFEST_FILE, TRAIN_RECORD, rebuild_from_base, save_delta
from slam_align.train.engines import Engine, is_main_process
from slam_align.train.recipes import get_recipe
from slam_align.train.report import eval_curve, loss_curve, plot_losses, write_readme
from slam_align.train.trainer import (
    build_trainer,
    optimizer_state_bytes,
    peak_memory,
    stage_seconds,
    training_arguments,
)

log = logging.getLogger(__name__)

# What slam train writes into its run directory besides the common files (--overwrite removes these).
OUTPUTS = ("final", "adapter", "stage1", "stage2", "checkpoint-*", "loss.png")
# Options that may differ between a run and its resumption.
_RESUME_FREE = {
    "resume",
    "overwrite",
    "progress",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "report_to",
    "tokenized_cache",
}


@dataclass(kw_only=True)
class TrainOptions(PlanSpec):
    """The options of ``slam train`` (CLI flags, YAML keys and Python API). The plan fields
    (method, layers, modules, ...) are :class:`PlanSpec`'s, shared with ``slam plan``; the
    defaults are small-run friendly and ``configs/train/*.yaml`` hold the paper's settings."""

    model: str = option(help="base model: hub id or local directory")
    output: str = option(help="run directory (final model in OUTPUT/final)", aliases=["-o"])
    # data
    data: list[str] = option(
        [],
        help="training files (Alpaca JSON/JSONL or slam data build directories), optionally weighted: "
        "a.jsonl:0.7,b.jsonl:0.3",
    )
    stage1_data: list[str] = option([], help="two-stage: question-alignment files (default: kind=alignment)")
    stage2_data: list[str] = option([], help="two-stage: response files (default: the other rows of --data)")
    field_map: list[str] = option([], help="rename input fields, e.g. instruction=query,output=response")
    prompt: str = option(DEFAULT_PROMPT, help="prompt template name (slam_align.data.prompts)")
    cutoff_len: int = option(1024, help="truncate examples to this many tokens", at_least=2)
    limit: int | None = option(None, help="use at most this many training examples (per stage)", at_least=1)
    packing: bool = option(
        False,
        help="padding-free: pack examples into rows of up to --cutoff-len tokens, each attending only "
        "to itself (position ids restart per example)",
    )
    group_by_length: bool = option(
        False, help="batch examples of similar length together (without --packing)"
    )
    tokenized_cache: str | None = option(
        None,
        help="directory caching the tokenised data; a run with the same data, tokenizer, template and "
        "cutoff reuses it",
    )
    val_size: float = option(
        0.0, help="share of the examples held out for validation (0: none)", at_least=0, at_most=0.5
    )
    eval_steps: int = option(
        10, help="with --val-size: evaluate the validation loss every N steps", at_least=1
    )
    # optimisation
    max_steps: int = option(-1, help="optimizer steps per stage (-1: use --num-train-epochs)", at_least=-1)
    num_train_epochs: float = option(1.0, help="epochs per stage when --max-steps is -1", above=0)
    learning_rate: float = option(2e-5, help="peak learning rate", above=0)
    lr_scheduler_type: str = option(
        "cosine", help="Transformers scheduler name (cosine, linear, constant...)"
    )
    warmup_ratio: float = option(0.0, help="fraction of steps for linear warm-up", at_least=0, at_most=0.99)
    optim: str | None = option(
        None,
        help="optimizer, as Transformers' TrainingArguments.optim names it (adamw_torch_fused, "
        "adamw_torch, adafactor, ...; default: the Trainer's, adamw_torch_fused)",
    )
    weight_decay: float = option(0.0, help="AdamW weight decay (trainable parameters only)", at_least=0)
    max_grad_norm: float = option(1.0, help="gradient clipping (0: none)", at_least=0)
    per_device_train_batch_size: int = option(4, help="micro-batch per device", at_least=1)
    gradient_accumulation_steps: int = option(1, help="micro-batches per optimizer step", at_least=1)
    effective_batch_size: int | None = option(
        None, help="global batch; sets gradient accumulation = this / (micro-batch x processes)", at_least=1
    )
    # precision and engines
    dtype: str = option(
        "auto",
        help="weights' dtype while training (auto = the base's)",
        choices=["auto", "float32", "bfloat16"],
    )
    bf16: bool = option(False, help="bf16 mixed precision (GPU)")
    gradient_checkpointing: bool = option(False, help="recompute activations in backward to save memory")
    use_liger_kernel: bool = option(
        False, help="Liger's fused Triton kernels (GPU; needs liger-kernel installed)"
    )
    report_to: str = option(
        "none", help="experiment tracking (Trainer's report_to)", choices=["none", "tensorboard", "wandb"]
    )
    deepspeed: str | None = option(
        None, help="DeepSpeed JSON config (configs/deepspeed/zero2.json; needs slam-align[deepspeed])"
    )
    fsdp: str | None = option(
        None,
        help="Trainer FSDP spec, e.g. 'full_shard auto_wrap' (2+ processes; FSDP2 unless the config says 1)",
    )
    fsdp_config: str | None = option(None, help="FSDP JSON config for --fsdp (configs/fsdp/fsdp2.json)")
    # run directory
    save_steps: int = option(0, help="checkpoint every K steps (0: only the final model)", at_least=0)
    save_total_limit: int | None = option(None, help="keep at most this many checkpoints", at_least=1)
    logging_steps: int = option(1, help="log the loss every K steps", at_least=1)
    resume: bool = option(False, help="continue OUTPUT from its newest checkpoint")
    overwrite: bool = option(False, help="replace an earlier slam train run in OUTPUT")
    save_delta: bool = option(True, help="subset methods: also write final/slam_delta.safetensors")
    progress: bool = option(True, help="show progress bars")


def _check(options: TrainOptions) -> None:
    """Everything that can be checked without a model, before anything is written."""
    from transformers.trainer_utils import SchedulerType
    from transformers.training_args import OptimizerNames

    get_recipe(options.method)
    get_prompt(options.prompt)
    if options.max_steps == 0:
        raise SlamError("option 'max-steps' is 0; expected -1 (use --num-train-epochs) or a number >= 1")
    schedulers = [s.value for s in SchedulerType]
    if options.lr_scheduler_type not in schedulers:
        raise SlamError(
            f"option 'lr-scheduler-type' is {options.lr_scheduler_type!r}; expected one of: {', '.join(schedulers)}"
        )
    optimizers = [o.value for o in OptimizerNames]
    if options.optim is not None and options.optim not in optimizers:
        raise SlamError(f"option 'optim' is {options.optim!r}; expected one of: {', '.join(optimizers)}")
    if options.method not in ("full", "two-stage", "random"):
        check_layers_spec(options.layers)
    for name in ("deepspeed", "fsdp_config"):
        path = getattr(options, name)
        if path and not Path(path).is_file():
            raise SlamError(f"{path}: --{name.replace('_', '-')} config file not found")
    _check_switches(options)


def _check_switches(options: TrainOptions) -> None:
    """The ecosystem switches: refused in one line where they could not do what they say."""
    import importlib.util

    import torch

    if options.packing and options.group_by_length:
        raise SlamError("--group-by-length is for padded batches; --packing leaves no padding to save")
    if options.use_liger_kernel:
        if not torch.cuda.is_available():
            raise SlamError(
                "--use-liger-kernel needs a CUDA GPU (Liger's kernels are Triton); none is visible"
            )
        if importlib.util.find_spec("liger_kernel") is None:
            raise SlamError("--use-liger-kernel needs the liger-kernel package: pip install liger-kernel")
    tracker = {"tensorboard": "tensorboard", "wandb": "wandb"}.get(options.report_to)
    if tracker and importlib.util.find_spec(tracker) is None:
        raise SlamError(
            f"--report-to {options.report_to} needs the {tracker} package: pip install 'slam-align[tracking]'"
        )


def _stage_data(options: TrainOptions, stages: tuple[str, ...]) -> dict[str, list]:
    """Read every training file now, before any model is loaded (bad data fails fast)."""
    fmap = parse_field_map(options.field_map)
    if len(stages) == 1:
        if options.stage1_data or options.stage2_data:
            raise SlamError("--stage1-data / --stage2-data are for --method two-stage; use --data")
        ex = read_training_files(options.data, fmap, options.seed)
        return {stages[0]: ex[: options.limit] if options.limit else ex}
    if options.stage1_data or options.stage2_data:
        if not (options.stage1_data and options.stage2_data):
            raise SlamError(
                "two-stage: give both --stage1-data and --stage2-data (or one --data mixture with kinds)"
            )
        s1 = read_training_files(options.stage1_data, fmap, options.seed)
        s2 = read_training_files(options.stage2_data, fmap, options.seed)
    else:
        s1, s2 = split_by_kind(read_training_files(options.data, fmap, options.seed))
    if options.limit:
        s1, s2 = s1[: options.limit], s2[: options.limit]
    return dict(zip(stages, (s1, s2)))


def newest_checkpoint(stage_dir: Path) -> Path | None:
    """The newest *complete* checkpoint: trainer_state.json is written last, so it must parse."""
    found = []
    for p in stage_dir.glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    for _, p in sorted(found, reverse=True):
        try:
            json.loads((p / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # killed while saving: fall back to the one before
        return p
    return None


def _check_resumable(out: Path, options: TrainOptions) -> dict | None:
    """The previous timing of the run in ``out`` when resuming it with compatible options."""
    state = check_run_dir(
        out, "train", overwrite=options.overwrite, resume=options.resume, outputs=OUTPUTS, resumable=True
    )
    if state != "resume":
        return None
    before = read_yaml(out / "config.yaml", what="config of the run to resume") or {}
    for key, value in options_to_dict(options).items():
        if key not in _RESUME_FREE and before.get(key, value) != value:
            raise SlamError(
                f"{out / 'config.yaml'}: the run was started with {key}={before.get(key)!r}, "
                f"not {value!r}; resume with the same options or use a new --output"
            )
    timing = out / "timing.json"
    return read_json_object(timing, "timing of the run to resume") if timing.is_file() else {}


def base_dtype_of(config):
    import torch

    name = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(name, torch.dtype):
        return name
    return getattr(torch, str(name).replace("torch.", "")) if name else torch.float32


def _rebuilds_final(recipe, engine: Engine) -> bool:
    """Subset methods under DeepSpeed or FSDP: ``final/`` is rebuilt as base + the gathered
    trained tensors, so frozen tensors come straight from the base (these engines keep, and
    save, module weights in their own precision and layout)."""
    return recipe.subset and engine.kind in ("deepspeed", "fsdp")


def _save_stage(trainer, model, plan, target: Path, ctx: dict) -> None:
    """Save a stage's model at ``target`` in the base dtype (frozen tensors stay bit-identical).

    A collective under ZeRO-3 and FSDP (gathering): every process calls it; process 0 writes."""
    recipe, engine, options = ctx["recipe"], ctx["engine"], ctx["options"]
    base_dtype, train_dtype = ctx["base_dtype"], ctx["train_dtype"]
    if recipe.lora:
        trainer.save_model(str(ctx["out"] / "adapter"))  # the PEFT adapter alone
        if is_main_process():
            merged = model.merge_and_unload()
            merged.to(base_dtype).save_pretrained(str(target))
            ctx["tokenizer"].save_pretrained(str(target))
        return
    if _rebuilds_final(recipe, engine):
        # Only the trained tensors, at full size (DeepSpeed: its fp32 masters); the model is
        # rebuilt from the base once the engine is released (_finish).
        tensors = engines.gather_trained(trainer, list(plan.trainable_names))
        if is_main_process():
            extra = {"method": options.method, **plan.summary()}
            tensors = {k: v.to(base_dtype) for k, v in tensors.items()}
            save_delta(target, tensors, options.model, ctx["base_config"], extra)
        return
    if engine.kind in ("deepspeed", "fsdp"):
        trainer.save_model(str(target))  # gathers the full weights; process 0 writes them
        if is_main_process():  # in the engine's dtype: store them in the base's
            engines.cast_saved_model(target, base_dtype)
        return
    cast = base_dtype != train_dtype
    if cast:  # e.g. trained in fp32 from a bf16 base: store in the base's dtype
        model.to(base_dtype)
    trainer.save_model(str(target))
    if cast:
        model.to(train_dtype)


def train(options: TrainOptions) -> dict:
    """Train ``options.model`` with ``options.method``; return the run summary (see ``timing.json``)."""
    _check(options)
    engine = engines.resolve_engine(options)
    recipe = get_recipe(options.method)
    template = get_prompt(options.prompt)
    stage_examples = _stage_data(options, recipe.stages)
    if engine.sharded:
        _check_sharded_plan(options, engine)
    if options.packing:
        from slam_align.data.packing import check_packable
        from slam_align.models.loading import load_config

        check_packable(load_config(options.model))
    out = Path(options.output).expanduser()
    main = is_main_process()
    if main:
        previous = _check_resumable(out, options)
    else:  # the main process checks the directory; the others only need what is done already
        timing = out / "timing.json"
        previous = read_json_object(timing) if options.resume and timing.is_file() else None
    if previous and previous.get("complete"):
        log.info("%s: already complete; nothing to resume", out)
        return _summary(out, previous)
    # The first pending stage's TrainingArguments open the process group: a launch in which
    # the model would not be wrapped is refused here, before anything is written.
    pending = [s for s in recipe.stages if s not in (previous or {}).get("stages", {})]
    first_args = _stage_arguments(options, engine, _stage_dir(out, recipe, pending[0])) if pending else None
    run = None
    if main:
        run = open_run_dir(
            out,
            "train",
            config=options_to_dict(options),
            overwrite=options.overwrite,
            resume=options.resume,
            outputs=OUTPUTS,
            resumable=True,
        )
    ctx = {"options": options, "recipe": recipe, "engine": engine, "template": template, "out": out}
    try:
        timing = _train_stages(ctx, stage_examples, previous, run, first_args)
    except BaseException as e:
        if run is not None:
            run.close(e)
        raise
    if run is not None:
        run.finish(prompt=template.id)
        run.close()
    return _summary(out, timing)


def _stage_dir(out: Path, recipe, stage: str) -> Path:
    return out if len(recipe.stages) == 1 else out / stage


def _stage_arguments(options, engine: Engine, stage_dir: Path):
    """TrainingArguments of one stage, made before its model is loaded (ZeRO-3: partitioned
    loading), checked against the launch (:func:`engines.attach`)."""
    from slam_align.models.loading import load_config

    args = training_arguments(options, stage_dir, engine=engine, model_config=load_config(options.model))
    engines.attach(args, engine)
    return args


def _check_sharded_plan(options, engine: Engine) -> None:
    """Under ZeRO-3 / FSDP the plan must work on partitioned tensors: checked on the meta model."""
    from slam_align.models.freeze_plan import build_plan
    from slam_align.models.loading import load_config, meta_model

    if options.method == "two-stage" or options.method == "full":
        return
    engines.check_plan(engine, build_plan(meta_model(load_config(options.model)), options))


def _train_stages(ctx: dict, stage_examples, previous: dict | None, run, first_args) -> dict:
    import gc

    from transformers import set_seed

    from slam_align.data.token_cache import tokenize_cached
    from slam_align.models.accounting import count_parameters
    from slam_align.models.loading import load_config, load_model, load_tokenizer, resolve_dtype

    options, recipe, engine, out = ctx["options"], ctx["recipe"], ctx["engine"], ctx["out"]
    started = time.perf_counter()
    set_seed(options.seed)
    tokenizer = load_tokenizer(options.model)
    base_config = load_config(options.model)
    base_dtype = base_dtype_of(base_config)
    train_dtype = base_dtype if options.dtype == "auto" else resolve_dtype(options.dtype)
    ctx.update(tokenizer=tokenizer, base_config=base_config, base_dtype=base_dtype, train_dtype=train_dtype)
    done = dict((previous or {}).get("stages", {}))
    curves, eval_curves = _previous_curves(out) if previous else ({}, {})
    plan = counts = None
    world = (previous or {}).get("world_size", engine.processes)
    args = first_args
    for i, stage in enumerate(recipe.stages):
        last = i == len(recipe.stages) - 1
        stage_dir = _stage_dir(out, recipe, stage)
        target = out / "final" if last else stage_dir / "final"
        if stage in done:
            continue
        if args is None:
            args = _stage_arguments(options, engine, stage_dir)
        # Every stage loads its model the same way, after its TrainingArguments: the base, or
        # the previous stage's final/ (under ZeRO-3 partitioned, 1/N per process).
        source = str(out / recipe.stages[i - 1] / "final") if i > 0 else options.model
        model = load_model(source, dtype=train_dtype)
        partitioned = engines.partitioned(model)
        set_seed(options.seed)  # LoRA initialisation and random layers are seeded per stage
        model, plan, frozen = recipe.prepare(model, options)
        engines.check_plan(engine, plan)
        features, dropped, cache = tokenize_cached(
            stage_examples[stage], tokenizer, ctx["template"], options.cutoff_len, options.tokenized_cache
        )
        if not features:
            raise SlamError(f"{stage}: no example left after truncation to {options.cutoff_len} tokens")
        features, val_features = split_validation(features, options.val_size, options.seed)
        checkpoint = newest_checkpoint(stage_dir) if options.resume else None
        trainer = build_trainer(
            model,
            tokenizer,
            _dataset(features, options),
            options,
            stage_dir,
            frozen=frozen,
            args=args,
            eval_dataset=_dataset(val_features, options) if val_features else None,
            resume_from=checkpoint,
        )
        engines.check_trainer(trainer, engine)
        if run is not None:
            run.begin_work()  # from here on a failure leaves a run that --resume continues
        if checkpoint:
            log.info("resuming %s from %s", stage, checkpoint)
        cpu0 = time.process_time()
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        wall = stage_seconds(trainer)  # counts the time before a resume too
        cpu = time.process_time() - cpu0  # this process, since this (re)start
        counts = count_parameters(model, plan)  # before saving: LoRA's merge removes the adapters
        _save_stage(trainer, model, plan, target, ctx)
        tokens = int(trainer.state.num_input_tokens_seen or 0)  # summed over the processes
        world = engines.world_size(trainer)
        curves[stage] = loss_curve(trainer.state.log_history)
        if val_features:
            eval_curves[stage] = eval_curve(trainer.state.log_history)
        positions = trainer.positions_seen
        # Validation passes run inside train(): they are not training throughput.
        eval_seconds = sum(e.get("eval_runtime", 0.0) for e in trainer.state.log_history)
        train_seconds = max(wall - eval_seconds, 0.0)
        done[stage] = {
            "wall_seconds": wall,
            "steps": int(trainer.state.global_step),
            "resumed_from": str(checkpoint) if checkpoint else None,
            "loaded_partitioned": partitioned,
            "examples": len(features),
            "validation_examples": len(val_features),
            "dropped_examples": dropped,
            "tokenized_cache": cache,
            "packing": options.packing,
            "tokens_seen": tokens,
            "positions_computed": positions,
            "padding_share": 1 - tokens / positions if positions else 0.0,
            "eval_seconds": eval_seconds,
            # this process' CPU time in train() (validation included): other processes'
            # load on a shared machine does not inflate it as it does the wall time
            "cpu_seconds": cpu,
            "tokens_per_second": tokens / train_seconds if train_seconds > 0 else 0.0,
            "train_loss": float(result.training_loss),
            "final_loss": curves[stage][-1]["loss"] if curves[stage] else float("nan"),
            "trainable_params": counts["trainable_params"],
            "optimizer_state_bytes": optimizer_state_bytes(trainer),
        }
        if run is not None:
            atomic_write_json(out / "metrics.json", _metrics(curves, eval_curves, options))
            atomic_write_json(out / "timing.json", _timing(done, False, ctx, plan, counts, world))
        trainer.accelerator.wait_for_everyone()
        # The next stage loads its own model (from this one's final/): free this one first.
        trainer.accelerator.free_memory()
        del trainer, model, frozen
        args = None  # the next stage makes its own (output directory, DeepSpeed config)
        gc.collect()

    # Nothing below may load a model partitioned (the rebuild from the base, slam merge).
    engines.release(engine)
    if plan is None:  # resumed after the last stage finished but before the summary was written
        from slam_align.models.freeze_plan import build_plan
        from slam_align.models.loading import meta_model

        meta = meta_model(base_config)
        plan = build_plan(meta, options)
        counts = count_parameters(meta, plan)
    timing = _timing(done, True, ctx, plan, counts, world)
    timing["process_seconds"] = time.perf_counter() - started
    if run is not None:
        _finish(ctx, plan, timing, curves, eval_curves)
    engines.wait_for_everyone()  # the other processes end once final/ is complete
    return timing


def _timing(done, complete, ctx, plan, counts, world: int) -> dict:
    options, recipe = ctx["options"], ctx["recipe"]
    trainable, total = counts["trainable_params"], counts["total_params"]
    if recipe.lora:
        total = total - trainable  # the adapters are extra parameters on top of the base
    stages = {k: dict(v) for k, v in done.items()}
    trainable = max((s["trainable_params"] for s in stages.values()), default=trainable)
    walls = sum(s["wall_seconds"] for s in stages.values())
    tokens = sum(s["tokens_seen"] for s in stages.values())
    evals = sum(s.get("eval_seconds", 0.0) for s in stages.values())
    return {
        "complete": complete,
        "method": options.method,
        "stages": stages,
        "total_wall_seconds": walls,
        "steps": sum(s["steps"] for s in stages.values()),
        "tokens_seen": tokens,
        "tokens_per_second": tokens / training if (training := walls - evals) > 0 else 0.0,
        "trainable_params": trainable,
        "total_params": total,
        "trainable_fraction": trainable / total if total else 0.0,
        "optimizer_state_bytes": max((s["optimizer_state_bytes"] for s in stages.values()), default=0),
        **peak_memory(),
        "world_size": world,
        "engine": ctx["engine"].label,
        "base_dtype": str(ctx["base_dtype"]).replace("torch.", ""),
        "plan": plan.summary(),
    }


def _previous_curves(out: Path) -> tuple[dict, dict]:
    """Training and validation loss curves of stages finished before a crash (metrics.json is
    rewritten after each stage)."""
    path = out / "metrics.json"
    if not path.is_file():
        return {}, {}
    metrics = read_json_object(path, "metrics of the run to resume")
    return metrics.get("loss_curve", {}), metrics.get("eval_loss_curve", {})


def _metrics(curves: dict, eval_curves: dict, options: TrainOptions) -> dict:
    metrics = {"loss_curve": curves, "method": options.method}
    if eval_curves:
        metrics["eval_loss_curve"] = eval_curves
    return metrics


def split_validation(features: list[dict], val_size: float, seed: int) -> tuple[list[dict], list[dict]]:
    """(train, validation): ``val_size`` of the examples (at least one) drawn with ``seed``."""
    import random

    if val_size <= 0:
        return features, []
    n_val = max(1, round(len(features) * val_size))
    if n_val >= len(features):
        raise SlamError(f"--val-size {val_size} leaves no training example of {len(features)}")
    held = set(random.Random(seed).sample(range(len(features)), n_val))
    return (
        [f for i, f in enumerate(features) if i not in held],
        [f for i, f in enumerate(features) if i in held],
    )


def _dataset(features: list[dict], options: TrainOptions):
    from slam_align.data.packing import PackedDataset
    from slam_align.data.tokenize import FeatureDataset

    return PackedDataset(features, options.cutoff_len) if options.packing else FeatureDataset(features)


def training_record(out: Path, options: TrainOptions, timing: dict, template) -> dict:
    """``final/slam_train.json``: which run made this model, what it trained, how long it took."""
    from slam_align.train.delta import base_reference

    return {
        "format": "slam-train/1",
        "run_dir": str(out.resolve()),
        "base_model": base_reference(options.model),
        "method": options.method,
        "layers": timing["plan"]["layers"],
        "prompt": template.id,
        "trainable_params": timing["trainable_params"],
        "total_params": timing["total_params"],
        "trainable_fraction": timing["trainable_fraction"],
        "train_seconds": timing["total_wall_seconds"],
        "steps": timing["steps"],
    }


def _finish(ctx: dict, plan, timing, curves, eval_curves) -> None:
    options, recipe, out = ctx["options"], ctx["recipe"], ctx["out"]
    final = out / "final"
    if _rebuilds_final(recipe, ctx["engine"]):
        # final/ holds the delta the last stage gathered: put the base around it (whole, on
        # this process only: the engine was released, so nothing loads partitioned).
        rebuild_from_base(final, options.model)
        if not options.save_delta:
            for name in (DELTA_FILE, MANIFEST_FILE):
                (final / name).unlink(missing_ok=True)
    elif recipe.subset and options.save_delta:
        extra = {"method": options.method, **plan.summary()}
        save_delta(final, list(plan.trainable_names), options.model, ctx["base_config"], extra)
    atomic_write_json(final / TRAIN_RECORD, training_record(out, options, timing, ctx["template"]))
    atomic_write_json(out / "metrics.json", _metrics(curves, eval_curves, options))
    plot_losses(curves, out / "loss.png", f"{options.method}: training loss", eval_curves)
    atomic_write_json(out / "timing.json", timing)
    write_readme(out, options, timing, plan.summary())


def _summary(out: Path, timing: dict) -> dict:
    return {
        "output_dir": str(out),
        "final_dir": str(out / "final"),
        "method": timing.get("method"),
        "train_seconds": timing.get("total_wall_seconds"),
        "trainable_params": timing.get("trainable_params"),
        "total_params": timing.get("total_params"),
        "trainable_fraction": timing.get("trainable_fraction"),
        "layers": timing.get("plan", {}).get("layers"),
        "timing": timing,
    }


def train_cli(options: TrainOptions) -> int:
    result = train(options)
    if is_main_process():
        t = result["timing"]
        print(
            f"trained {options.method}: {t['trainable_params']:,} of {t['total_params']:,} parameters "
            f"({t['trainable_fraction']:.2%}), {t['steps']} steps in {t['total_wall_seconds']:.1f} s "
            f"-> {result['final_dir']}"
        )
    return 0
