"""The engines under ``slam train``: DDP, DeepSpeed ZeRO-2/3 and FSDP2, as the Trainer runs them.

Nothing here trains: the Transformers ``Trainer`` (through accelerate) wraps the model. This
module only makes sure that the engine a launch asks for is the engine that runs, on CPU
processes as on GPUs, and that what a run writes is complete whatever the engine:

- **CPU processes** (``torchrun --nproc_per_node 2`` without a GPU): accelerate wraps the
  model only when told that this is a CPU run (``TrainingArguments(use_cpu=True)``);
  otherwise every process silently trains its own copy on its share of the data. We set it,
  with the gloo backend, and refuse a multi-process launch whose Trainer would not be
  data-parallel (:func:`attach`).
- **DeepSpeed**: ``TrainingArguments`` is created *before* the model is loaded, so that under
  ZeRO-3 ``from_pretrained`` sees the live DeepSpeed config and loads every weight
  partitioned (each process holds 1/N of the base instead of all of it). The config's
  ``auto`` values that depend on the model's hidden size are filled from the model's config
  first (Transformers fills them only once the model exists, after the loading that needs
  them). On CPU, DeepSpeed's CPU accelerator is given the process group accelerate opened
  (gloo). After training the config is unset (:func:`release`) so that a later
  ``from_pretrained`` (the rebuild of ``final/`` from the base) loads a whole model.
- **FSDP** (version 2 by default, Transformers' default): on CPU processes accelerate drops
  the FSDP plugin (it enables FSDP only for GPU-like process groups) and the Trainer falls
  back to plain DDP; we relabel the CPU process group so that the plugin is kept (CPU only;
  on GPUs nothing is changed) and check after the Trainer is built that FSDP is what runs.
- **Trained tensors** are gathered at full size (:func:`gather_trained`, a collective):
  DeepSpeed's fp32 master copies, FSDP's sharded DTensors, plain tensors otherwise.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from slam_align.errors import SlamError

# The Trainer's hidden-size-dependent DeepSpeed values (transformers.integrations.deepspeed).
_HIDDEN_AUTO = {
    "reduce_bucket_size": lambda h: h * h,
    "stage3_prefetch_bucket_size": lambda h: int(0.9 * h * h),
    "stage3_param_persistence_threshold": lambda h: 10 * h,
}


def launched_world_size() -> int:
    """Processes the launcher started (torchrun, accelerate and deepspeed set WORLD_SIZE)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise SlamError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number of processes") from None


def is_main_process() -> bool:
    """Process 0 of the launch (the one that writes the run directory)."""
    return os.environ.get("RANK", "0") == "0"


def _cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


@dataclass(frozen=True)
class Engine:
    """What a launch asks for: ``kind`` is ``single``, ``ddp``, ``deepspeed`` or ``fsdp``."""

    kind: str
    processes: int = 1
    zero_stage: int = 0
    fsdp_version: int = 0
    deepspeed_config: dict | None = None
    fsdp_config: dict | None = None

    @property
    def sharded(self) -> bool:
        """Weights partitioned over the processes (ZeRO-3, FSDP): no process holds the whole model."""
        return self.zero_stage == 3 or self.kind == "fsdp"

    @property
    def label(self) -> str:
        if self.kind == "deepspeed":
            return f"DeepSpeed ZeRO-{self.zero_stage}"
        if self.kind == "fsdp":
            return f"FSDP{self.fsdp_version}"
        return {"ddp": "DDP", "single": "one process"}[self.kind]


def _read_json_config(path: str, flag: str) -> dict:
    from slam_align.io import read_json

    data = read_json(path, what=f"{flag} config")
    if not isinstance(data, dict):
        raise SlamError(f"{path}: {flag} config must be a JSON object, got {type(data).__name__}")
    return data


def resolve_engine(options) -> Engine:
    """The engine of ``options`` and the launch; every impossible combination is one line, now
    (before a model is loaded or a file written)."""
    processes = launched_world_size()
    fsdp_env = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
    if options.deepspeed and (options.fsdp or fsdp_env):
        raise SlamError("--deepspeed and FSDP are two engines; pick one")
    if options.fsdp_config and not options.fsdp:
        raise SlamError("--fsdp-config needs --fsdp (e.g. --fsdp 'full_shard auto_wrap')")
    if options.deepspeed:
        try:
            import deepspeed  # noqa: F401
        except ImportError:
            raise SlamError(
                'DeepSpeed is not installed: pip install "slam-align[deepspeed]" (or drop --deepspeed)'
            ) from None
        config = _read_json_config(options.deepspeed, "--deepspeed")
        zero = config.get("zero_optimization") or {}
        stage = zero.get("stage", 0) if isinstance(zero, dict) else None
        if stage not in (0, 1, 2, 3):
            raise SlamError(
                f"{options.deepspeed}: zero_optimization.stage is {stage!r}; expected 0, 1, 2 or 3"
            )
        if stage == 3 and zero.get("stage3_gather_16bit_weights_on_model_save") is not True:
            raise SlamError(
                f"{options.deepspeed}: ZeRO-3 needs zero_optimization.stage3_gather_16bit_weights_on_model_save: "
                "true (final/ is written from the gathered weights)"
            )
        engine = Engine("deepspeed", processes, zero_stage=stage, deepspeed_config=config)
    elif options.fsdp or fsdp_env:
        config = _read_json_config(options.fsdp_config, "--fsdp-config") if options.fsdp_config else {}
        version = int(config.get("version", os.environ.get("FSDP_VERSION", 2)))
        if processes < 2:
            raise SlamError(
                "FSDP shards the model over processes: launch with torchrun --nproc_per_node N (N >= 2), "
                "or drop --fsdp"
            )
        if version == 1 and _cpu():
            raise SlamError(
                "FSDP1 is not supported on CPU processes (accelerate's full state dicts crash there and "
                "AdamW state is lost on resume); use FSDP2, the default (configs/fsdp/fsdp2.json)"
            )
        if version == 1 and str(config.get("use_orig_params", "true")).lower() == "false":
            raise SlamError(
                "FSDP1 with use_orig_params: false flattens frozen and trainable parameters into one "
                "tensor and refuses the mix; set use_orig_params: true or use FSDP2"
            )
        engine = Engine("fsdp", processes, fsdp_version=version, fsdp_config=config)
    else:
        engine = Engine("ddp" if processes > 1 else "single", processes)
    if engine.sharded and options.method == "lora":
        raise SlamError(
            f"--method lora is not supported under {engine.label} (the adapters are merged into "
            "partitioned weights); use DDP or ZeRO-2"
        )
    return engine


def check_plan(engine: Engine, plan) -> None:
    """Plans whose gradient hooks need whole tensors cannot run on partitioned weights."""
    if engine.sharded and plan.partial:
        name = next(iter(plan.partial))
        raise SlamError(
            f"{name}: a partially trained fused tensor (ffn on a fused gate_up) needs whole tensors; "
            f"{engine.label} partitions them: use DDP or ZeRO-2, or --modules ffn-all"
        )


def deepspeed_config(config: dict, model_config) -> dict:
    """``config`` with the ``auto`` values that depend on the model's hidden size filled in, as
    the Trainer would, so that ZeRO-3's partitioned loading (which reads them) can use them."""
    config = json.loads(json.dumps(config))
    zero = config.get("zero_optimization")
    if not isinstance(zero, dict):
        return config
    text = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    hidden = getattr(text, "hidden_size", None)
    for key, fill in _HIDDEN_AUTO.items():
        if zero.get(key) == "auto":
            if not isinstance(hidden, int):
                raise SlamError(
                    f"the DeepSpeed config has zero_optimization.{key}: auto but the model's config has no "
                    "hidden_size; give a number"
                )
            if key == "reduce_bucket_size" or zero.get("stage") == 3:
                zero[key] = fill(hidden)
    return config


def training_kwargs(engine: Engine, model_config) -> dict:
    """``TrainingArguments`` fields for the engine (and for CPU processes)."""
    kwargs: dict = {}
    if _cpu():
        # Without use_cpu accelerate does not know that a CPU launch is distributed: the model
        # would not be wrapped and each process would train its own copy.
        kwargs["use_cpu"] = True
        if engine.processes > 1:
            kwargs["ddp_backend"] = "gloo"
    if engine.kind == "deepspeed":
        config = engine.deepspeed_config
        kwargs["deepspeed"] = config if model_config is None else deepspeed_config(config, model_config)
    return kwargs


def attach(args, engine: Engine) -> None:
    """After ``TrainingArguments`` (which opened the process group), before the model is loaded."""
    import torch

    if engine.processes > 1 and (
        args.world_size != engine.processes or args.parallel_mode.value != "distributed"
    ):
        raise SlamError(
            f"refusing to train: launched as {engine.processes} processes, but the Trainer sees "
            f"{args.world_size} ({args.parallel_mode.value}): the model would not be wrapped and each "
            "process would train its own copy (launch with torchrun or accelerate launch)"
        )
    if engine.processes < 2 or torch.cuda.is_available():
        return
    if engine.kind == "deepspeed":
        import importlib

        import deepspeed

        # DeepSpeed's CPU backend would JIT-compile (about 100 s, needs a C++ compiler) a
        # shared-memory all-reduce used only by its inference kernels; training uses gloo.
        # (``import deepspeed.comm.torch as m`` would bind torch itself: deepspeed.comm re-exports it.)
        importlib.import_module("deepspeed.comm.torch").build_shm_op = lambda: None
        # Hand DeepSpeed the gloo group accelerate opened (on GPUs the Trainer does this).
        deepspeed.init_distributed(dist_backend="gloo")
    elif engine.kind == "fsdp":
        from accelerate.state import PartialState
        from accelerate.utils import DistributedType

        # accelerate keeps an FSDP plugin only for GPU-like process groups; a CPU (gloo) group
        # is MULTI_CPU and the Trainer would silently fall back to DDP. The group is the same.
        state = PartialState()
        if state.distributed_type == DistributedType.MULTI_CPU:
            PartialState._shared_state["distributed_type"] = DistributedType.MULTI_GPU


def check_trainer(trainer, engine: Engine) -> None:
    """The engine asked for is the one the Trainer set up (accelerate falls back silently)."""
    acc = trainer.accelerator
    kind = acc.distributed_type.value
    if engine.kind == "deepspeed" and not trainer.is_deepspeed_enabled:
        raise SlamError(f"refusing to train: DeepSpeed was asked for but accelerate set up {kind}")
    if engine.kind == "fsdp" and not trainer.is_fsdp_enabled:
        raise SlamError(f"refusing to train: FSDP was asked for but accelerate set up {kind}")
    if engine.processes > 1 and (acc.num_processes != engine.processes or kind == "NO"):
        raise SlamError(
            f"refusing to train: launched as {engine.processes} processes, but accelerate runs "
            f"{acc.num_processes} ({kind}): each process would train its own copy"
        )


def gather_trained(trainer, names: list[str]) -> dict:
    """The trained tensors at full size, in fp32 where the engine keeps an fp32 master copy.

    A collective under ZeRO-3 and FSDP: every process must call it. Returns CPU tensors."""

    # FSDP's own activation checkpointing wraps each layer and renames its parameters.
    params = {_clean(n): p for n, p in trainer.model.named_parameters()}
    out = {}
    if trainer.is_deepspeed_enabled:
        from deepspeed.utils import safe_get_full_fp32_param

        for n in names:  # all-gathers the fp32 partitions under ZeRO-3
            t = safe_get_full_fp32_param(params[n])
            if t is None:
                raise SlamError(f"DeepSpeed holds no fp32 master of {n}; is it trainable?")
            out[n] = t.detach().to("cpu", copy=True)
        return out
    for n in names:
        p = params[n]
        full = p.full_tensor() if hasattr(p, "full_tensor") else p  # FSDP2: a DTensor shard
        out[n] = full.detach().to("cpu", copy=True)
    return out


def _clean(name: str) -> str:
    return name.replace("_checkpoint_wrapped_module.", "").replace("_fsdp_wrapped_module.", "")


def partitioned(model) -> bool:
    """Whether ``model`` was loaded partitioned (ZeRO-3: each process holds only its share)."""
    return any(hasattr(p, "ds_numel") for p in model.parameters())


def release(engine: Engine) -> None:
    """After training: later ``from_pretrained`` calls load whole models again (not partitioned)."""
    if engine.kind == "deepspeed":
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()


def world_size(trainer) -> int:
    """Processes that shared the training (accelerate's count, not the launcher's)."""
    return int(trainer.accelerator.num_processes)


def wait_for_everyone() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cast_saved_model(model_dir: Path, dtype) -> None:
    """Rewrite a saved model's floating-point tensors in ``dtype`` where the engine saved them
    in its own (DeepSpeed: the module dtype, e.g. fp32 partitions of a bf16 base; FSDP with
    bf16: fp32 trainable tensors beside bf16 frozen ones)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from slam_align.io import atomic_path

    for f in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as st:
            meta = st.metadata()
            tensors = {k: st.get_tensor(k) for k in st.keys()}
        if all(not t.is_floating_point() or t.dtype == dtype for t in tensors.values()):
            continue
        tensors = {k: t.to(dtype) if t.is_floating_point() else t for k, t in tensors.items()}
        with atomic_path(f) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
