"""``slam train``: run a recipe's stages on the shared Trainer set-up and account for them.

Run directory (``--output DIR``)::

    config.yaml        the options (and the prompt template id)
    checkpoint-N/      Trainer checkpoints (two-stage: stage1/checkpoint-N, stage2/checkpoint-N)
    stage1/final/      two-stage only: the model after stage 1
    final/             the trained model, base dtype (+ slam_delta.safetensors for subset methods)
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
import shutil
import time
from pathlib import Path

import torch

from slam_align.config import options_to_dict
from slam_align.data.prompts import get_prompt
from slam_align.data.tokenize import tokenize_examples
from slam_align.errors import SlamError
from slam_align.io import atomic_write_json, atomic_write_yaml, environment_versions, prepare_output_dir
from slam_align.models.loading import load_config, load_model, load_tokenizer
from slam_align.train import datasets as data
from slam_align.train.config import TrainOptions
from slam_align.train.delta import rebuild_from_base, save_delta
from slam_align.train.recipes import get_recipe
from slam_align.train.report import loss_curve, plot_losses, write_readme
from slam_align.train.trainer import (
    build_trainer,
    count_params,
    is_main_process,
    optimizer_state_bytes,
    peak_memory,
    world_size,
)

log = logging.getLogger(__name__)

# Options that may differ between a run and its resumption.
_RESUME_FREE = {"resume", "overwrite", "progress", "save_steps", "save_total_limit", "logging_steps"}


def _stage_data(options: TrainOptions, stages: tuple[str, ...]) -> dict[str, list]:
    """Read every training file now, before any model is loaded (bad data fails fast)."""
    fmap = data.parse_field_map(options.field_map)
    if len(stages) == 1:
        if options.stage1_data or options.stage2_data:
            raise SlamError("--stage1-data / --stage2-data are for --method two-stage; use --data")
        ex = data.read_mixture(options.data, fmap, options.seed)
        return {stages[0]: ex[: options.limit] if options.limit else ex}
    if options.stage1_data or options.stage2_data:
        if not (options.stage1_data and options.stage2_data):
            raise SlamError(
                "two-stage: give both --stage1-data and --stage2-data (or one --data mixture with kinds)"
            )
        s1 = data.read_mixture(options.stage1_data, fmap, options.seed)
        s2 = data.read_mixture(options.stage2_data, fmap, options.seed)
    else:
        s1, s2 = data.split_by_kind(data.read_mixture(options.data, fmap, options.seed))
    if options.limit:
        s1, s2 = s1[: options.limit], s2[: options.limit]
    return dict(zip(stages, (s1, s2)))


def _check_layers_file(options: TrainOptions) -> None:
    if options.layers.startswith("auto:") and options.method not in ("full", "two-stage", "random"):
        path = Path(options.layers[5:])
        if not path.is_file():
            raise SlamError(f"{path}: layers file not found (write it with slam identify --output DIR)")


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


def _prepare_run_dir(out: Path, options: TrainOptions, config_record: dict) -> dict | None:
    """Create or validate the run directory; return the previous timing when resuming."""
    if options.overwrite and not options.resume and out.is_dir() and is_main_process():
        for child in out.iterdir():  # the user asked to replace this run's results
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    if is_main_process():
        prepare_output_dir(out, overwrite=options.overwrite, resume=options.resume)
    if not options.resume or not (out / "config.yaml").is_file():
        return None
    import yaml

    before = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8")) or {}
    for key, value in config_record.items():
        if key not in _RESUME_FREE and before.get(key, value) != value:
            raise SlamError(
                f"{out / 'config.yaml'}: the run was started with {key}={before.get(key)!r}, "
                f"not {value!r}; resume with the same options or use a new --output"
            )
    timing = out / "timing.json"
    return json.loads(timing.read_text(encoding="utf-8")) if timing.is_file() else None


def base_dtype_of(config) -> torch.dtype:
    return _dtype(getattr(config, "dtype", None) or getattr(config, "torch_dtype", None))


def _dtype(name) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    return getattr(torch, str(name).replace("torch.", "")) if name else torch.float32


def _save_final(trainer, model, recipe, target: Path, out: Path, base_dtype, train_dtype, tokenizer):
    """Save the model at ``target`` in the base dtype (frozen tensors stay bit-identical)."""
    if recipe.lora:
        trainer.save_model(str(out / "adapter"))  # the PEFT adapter alone
        if is_main_process():
            merged = model.merge_and_unload()
            merged.to(base_dtype).save_pretrained(str(target))
            tokenizer.save_pretrained(str(target))
        return
    cast = base_dtype != train_dtype
    if cast:  # e.g. trained in fp32 from a bf16 base: store in the base's dtype
        model.to(base_dtype)
    trainer.save_model(str(target))
    if cast:
        model.to(train_dtype)  # same values as reloading the saved stage (two-stage continues from it)


def train(options: TrainOptions) -> dict:
    """Train ``options.model`` with ``options.method``; return the run summary (see ``timing.json``)."""
    from transformers import set_seed

    recipe = get_recipe(options.method)
    template = get_prompt(options.prompt)
    _check_layers_file(options)
    stage_examples = _stage_data(options, recipe.stages)
    out = Path(options.output)
    record = {**options_to_dict(options), "prompt_id": template.id}
    previous = _prepare_run_dir(out, options, record)
    if previous and previous.get("complete"):
        log.info("%s: already complete; nothing to resume", out)
        return _summary(out, previous)
    main = is_main_process()
    if main:
        atomic_write_yaml(out / "config.yaml", record)

    started = time.perf_counter()
    set_seed(options.seed)
    tokenizer = load_tokenizer(options.model)
    base_config = load_config(options.model)
    base_dtype = base_dtype_of(base_config)
    train_dtype = base_dtype if options.dtype == "auto" else _dtype(options.dtype)
    done = dict((previous or {}).get("stages", {}))
    curves: dict[str, list] = _previous_curves(out) if previous else {}
    model = None
    plan = None
    for i, stage in enumerate(recipe.stages):
        last = i == len(recipe.stages) - 1
        stage_dir = out if len(recipe.stages) == 1 else out / stage
        target = out / "final" if last else stage_dir / "final"
        if stage in done:
            continue
        if model is None:  # first stage run in this process: the base, or the previous stage's model
            source = str(out / recipe.stages[i - 1] / "final") if i > 0 else options.model
            model = load_model(source, dtype=train_dtype)
        set_seed(options.seed)  # LoRA initialisation and random layers are seeded per stage
        model, plan = recipe.prepare(model, options)
        features, dropped = tokenize_examples(stage_examples[stage], tokenizer, template, options.cutoff_len)
        if not features:
            raise SlamError(f"{stage}: no example left after truncation to {options.cutoff_len} tokens")
        trainer = build_trainer(
            model, tokenizer, data.FeatureDataset(features), options, stage_dir, plan=plan
        )
        checkpoint = newest_checkpoint(stage_dir) if options.resume else None
        if checkpoint:
            log.info("resuming %s from %s", stage, checkpoint)
        t0 = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        wall = time.perf_counter() - t0
        counts = count_params(model)  # before saving: LoRA's merge removes the adapters
        _save_final(trainer, model, recipe, target, out, base_dtype, train_dtype, tokenizer)
        trainable = counts[0]
        tokens = int(trainer.state.num_input_tokens_seen or 0)
        curves[stage] = loss_curve(trainer.state.log_history)
        done[stage] = {
            "wall_seconds": wall,
            "steps": int(trainer.state.global_step),
            "resumed_from": str(checkpoint) if checkpoint else None,
            "examples": len(features),
            "dropped_examples": dropped,
            "tokens_seen": tokens,
            "tokens_per_second": tokens / wall if wall > 0 else 0.0,
            "train_loss": float(result.training_loss),
            "final_loss": curves[stage][-1]["loss"] if curves[stage] else float("nan"),
            "trainable_params": trainable,
            "optimizer_state_bytes": optimizer_state_bytes(trainer),
        }
        if main:
            atomic_write_json(out / "metrics.json", {"loss_curve": curves, "method": options.method})
            atomic_write_json(
                out / "timing.json", _timing(done, False, options, recipe, plan, counts, base_dtype)
            )
        trainer.accelerator.wait_for_everyone()

    if plan is None:  # resumed after the last stage finished but before the summary was written
        model, plan = recipe.prepare(load_model(options.model, dtype=train_dtype), options)
        counts = count_params(model)
    timing = _timing(done, True, options, recipe, plan, counts, base_dtype)
    timing["process_seconds"] = time.perf_counter() - started
    if main:
        _finish(out, options, recipe, plan, timing, curves, base_config)
    return _summary(out, timing)


def _plan_summary(plan) -> dict:
    return {
        "method": getattr(plan, "method", None),
        "layers": list(getattr(plan, "layers", []) or []),
        "modules": getattr(plan, "modules", None),
        "trainable_tensors": len(getattr(plan, "trainable_names", []) or []),
    }


def _timing(done, complete, options, recipe, plan, counts, base_dtype) -> dict:
    trainable, total = counts
    if recipe.lora:
        total = total - trainable  # the adapters are extra parameters on top of the base
    stages = {k: dict(v) for k, v in done.items()}
    return {
        "complete": complete,
        "method": options.method,
        "stages": stages,
        "total_wall_seconds": sum(s["wall_seconds"] for s in stages.values()),
        "steps": sum(s["steps"] for s in stages.values()),
        "tokens_seen": sum(s["tokens_seen"] for s in stages.values()),
        "tokens_per_second": _ratio(
            sum(s["tokens_seen"] for s in stages.values()), sum(s["wall_seconds"] for s in stages.values())
        ),
        "trainable_params": max((s["trainable_params"] for s in stages.values()), default=trainable),
        "total_params": total,
        "trainable_fraction": _ratio(max((s["trainable_params"] for s in stages.values()), default=0), total),
        "optimizer_state_bytes": max((s["optimizer_state_bytes"] for s in stages.values()), default=0),
        **peak_memory(),
        "world_size": world_size(),
        "base_dtype": str(base_dtype).replace("torch.", ""),
        "plan": _plan_summary(plan),
    }


def _previous_curves(out: Path) -> dict:
    """Loss curves of stages finished before a crash (metrics.json is rewritten after each stage)."""
    path = out / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")).get("loss_curve", {}) if path.is_file() else {}


def _ratio(a, b) -> float:
    return a / b if b else 0.0


def _finish(out: Path, options, recipe, plan, timing, curves, base_config) -> None:
    final = out / "final"
    if recipe.subset and options.save_delta:
        extra = {"method": options.method, **_plan_summary(plan)}
        save_delta(final, list(plan.trainable_names), options.model, base_config, extra)
        if options.deepspeed:
            # DeepSpeed keeps (and saves) module weights in its own precision: take the frozen
            # tensors from the base again so that they stay bit-identical to it.
            rebuild_from_base(final, options.model)
    atomic_write_json(out / "metrics.json", {"loss_curve": curves, "method": options.method})
    plot_losses(curves, out / "loss.png", f"{options.method}: training loss")
    atomic_write_json(out / "timing.json", timing)
    write_readme(out, options, timing, _plan_summary(plan))
    atomic_write_json(out / "environment.json", environment_versions())


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
