"""Freezing plans: which parameters a method trains, and applying that to a model.

A plan is *layers x modules* (+ extras) for a *method*:

=========== ============================================================================
method      trains
=========== ============================================================================
slam        ``modules`` (default ``ffn``) of the chosen layers
full        every parameter
attention   ``modules`` (default ``attention``) of the chosen layers
random      ``modules`` (default ``ffn``) of ``num_random_layers`` distinct layers drawn with ``seed``
lora        PEFT LoRA adapters on the ``modules`` (default ``ffn``) of the chosen layers
=========== ============================================================================

Modules: ``ffn`` = up and down projections, gate frozen (exactly the SLAM paper's code);
``ffn-all`` = gate too; ``attention``; ``layer`` = everything in the layer (norms too).
Extras: ``embeddings`` (input token embeddings), ``lm-head``, ``norm`` (the final norm).

Fused [gate; up] tensors (Phi-3 ``mlp.gate_up_proj``, MoE ``mlp.experts.gate_up_proj``)
under ``ffn``: only the up half may change. ``plan.partial`` maps such a tensor to the
trainable :class:`Slice`. :func:`apply_plan` registers a gradient hook that zeroes the
gate half's gradient, so Adam-style optimizers (state starting at zero) never move it,
and keeps a CPU copy of the gate half; weight decay would still shrink it, so either put
partial tensors in a group without weight decay (:func:`param_groups` does) or call
:func:`restore_frozen_slices` after each optimizer step (works with any optimizer).
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from slam_align.errors import SlamError
from slam_align.models.architectures import FUSED_GATE_UP_DIM, LayerInfo, find_layers, model_type_of

METHODS = ("slam", "full", "attention", "random", "lora")
MODULES = ("ffn", "ffn-all", "attention", "layer")
EXTRAS = ("embeddings", "lm-head", "norm")
DEFAULT_MODULES = {"slam": ["ffn"], "random": ["ffn"], "attention": ["attention"], "lora": ["ffn"]}


@dataclass(frozen=True)
class Slice:
    """The trainable part of a partially trainable tensor: ``[start, stop)`` along ``dim``."""

    dim: int
    start: int
    stop: int


@dataclass
class FreezePlan:
    method: str
    layers: list[int]
    modules: list[str]
    extras: list[str]
    num_layers: int
    model_type: str
    trainable_names: list[str]  # full parameter names, in model order (lora: the adapted weights)
    partial: dict[str, Slice] = field(default_factory=dict)  # name -> trainable slice
    lora: dict | None = None  # r, lora_alpha, lora_dropout (method lora)
    seed: int = 0
    ffn_pattern: str | None = None
    attn_pattern: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["partial"] = {k: asdict(v) for k, v in self.partial.items()}
        return d


# ----------------------------------------------------------------------------- layers


def parse_layers(spec, num_layers: int) -> list[int]:
    """``"0-5"``, ``"0,2,4"``, ``"-1"`` / ``"-6--1"`` (from the top), ``"all"`` or
    ``"auto:PATH"`` (``selected`` of ``slam identify``'s layers.json, or of PATH/layers.json)
    -> sorted distinct 0-based layer indices. Also accepts an int or a list of ints."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        items: list = [spec]
    elif isinstance(spec, list | tuple):
        items = list(spec)
    else:
        text = str(spec).strip()
        if text == "all":
            return list(range(num_layers))
        if text == "auto" or text.startswith("auto:"):
            items = _auto_layers(text[5:].strip(), num_layers)
        else:
            items = [p.strip() for p in text.split(",") if p.strip()]
    out: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            out.add(_resolve(item, num_layers))
            continue
        m = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", str(item))
        if not m:
            raise SlamError(
                f"layers: cannot read {item!r} in {spec!r}; expected e.g. 0-5, 0,2,4, -1, all or auto:DIR/layers.json"
            )
        start = _resolve(int(m.group(1)), num_layers)
        stop = start if m.group(2) is None else _resolve(int(m.group(2)), num_layers)
        if stop < start:
            raise SlamError(f"layers: range {item!r} is empty (its end comes before its start)")
        out.update(range(start, stop + 1))
    if not out:
        raise SlamError(f"layers: {spec!r} selects no layer (empty layer set)")
    return sorted(out)


def _resolve(i: int, num_layers: int) -> int:
    if not -num_layers <= i < num_layers:
        raise SlamError(f"layer {i} does not exist: model has {num_layers} layers (0-{num_layers - 1})")
    return i % num_layers


def _auto_layers(path: str, num_layers: int) -> list:
    from slam_align.io import read_json

    if not path:
        raise SlamError(
            "layers: 'auto' needs a path, e.g. auto:runs/identify/layers.json (run slam identify first)"
        )
    p = Path(path)
    if p.is_dir():
        p = p / "layers.json"
    data = read_json(p, what="layers.json of slam identify")
    selected = data.get("selected") if isinstance(data, dict) else None
    if not isinstance(selected, list) or not all(isinstance(i, int) for i in selected):
        raise SlamError(f"{p}: field 'selected' must be a list of layer indices")
    if not selected:
        raise SlamError(f"{p}: field 'selected' is empty (empty layer set)")
    n = data.get("num_layers") or (len(data["scores"]) if isinstance(data.get("scores"), list) else None)
    if n is not None and n != num_layers:
        raise SlamError(f"{p}: selection was made on a model with {n} layers; this model has {num_layers}")
    return selected


# ----------------------------------------------------------------------------- building


def _as_list(value, what: str, allowed: tuple[str, ...]) -> list[str]:
    if value is None:
        return []
    items = (
        [v.strip() for v in value.split(",")] if isinstance(value, str) else [str(v).strip() for v in value]
    )
    items = [i.replace("_", "-") for i in items if i]
    for i in items:
        if i not in allowed:
            raise SlamError(f"{what}: unknown value {i!r}; expected one of: {', '.join(allowed)}")
    return list(dict.fromkeys(items))


def _module_names(info: LayerInfo, module: str) -> tuple[list[str], list[str]]:
    """(fully trainable names, half-trainable fused gate_up names) of ``module`` in one layer."""
    if module == "ffn":
        return info.ffn_up + info.ffn_down, list(info.ffn_gate_up)
    if module == "ffn-all":
        return info.ffn, []
    if module == "attention":
        return list(info.attention), []
    return list(info.params), []  # "layer"


def _up_half(param) -> Slice:
    dim = FUSED_GATE_UP_DIM % param.dim()
    size = param.shape[dim]
    if size % 2:
        raise SlamError(f"fused gate_up tensor of shape {tuple(param.shape)} cannot be split in halves")
    return Slice(dim=dim, start=size // 2, stop=size)


def _param_name(model, tensor) -> str | None:
    for name, p in model.named_parameters():
        if p is tensor:
            return name
    return None


def extra_names(model, extra: str, layer_params: set[str]) -> list[str]:
    """Parameter names of an extra: ``embeddings``, ``lm-head`` (tied: the embedding) or ``norm``."""
    if extra in ("embeddings", "lm-head"):
        get = model.get_input_embeddings if extra == "embeddings" else model.get_output_embeddings
        module = get()
        if module is None:
            raise SlamError(f"extras: {type(model).__name__} has no {extra}")
        names = [_param_name(model, p) for p in module.parameters()]
        return [n for n in names if n]
    # final norm: parameters outside the layers whose name says norm (not an embedding norm)
    return [
        n
        for n, _ in model.named_parameters()
        if n not in layer_params and re.search(r"norm|ln_f", n) and "embed" not in n
    ]


def build_plan(
    model,
    method: str = "slam",
    layers="0-5",
    modules=None,
    extras=(),
    seed: int = 0,
    num_random_layers: int = 6,
    ffn_pattern: str | None = None,
    attn_pattern: str | None = None,
    lora_r: int = 8,
    lora_alpha: int = 16,
    lora_dropout: float = 0.05,
) -> FreezePlan:
    """Which parameters ``method`` trains on ``model`` (a CausalLM; the meta device is fine)."""
    if method not in METHODS:
        raise SlamError(f"method: unknown method {method!r}; expected one of: {', '.join(METHODS)}")
    infos = find_layers(model, ffn_pattern=ffn_pattern, attn_pattern=attn_pattern)
    n = len(infos)
    mods = _as_list(modules, "modules", MODULES) or DEFAULT_MODULES.get(method, [])
    extra_list = _as_list(extras, "extras", EXTRAS)
    params = dict(model.named_parameters())

    if method == "full":
        chosen, mods, extra_list = list(range(n)), ["all"], []
    elif method == "random":
        if not 1 <= num_random_layers <= n:
            raise SlamError(
                f"num-random-layers: {num_random_layers} is not between 1 and the model's {n} layers"
            )
        chosen = sorted(random.Random(seed).sample(range(n), num_random_layers))
    else:
        chosen = parse_layers(layers, n)

    full: set[str] = set()
    halves: set[str] = set()
    if method == "full":
        full = set(params)
    else:
        for i in chosen:
            for m in mods:
                whole, half = _module_names(infos[i], m)
                full.update(whole)
                halves.update(half)
        layer_params = {p for info in infos for p in info.params}
        for e in extra_list:
            full.update(extra_names(model, e, layer_params))
    halves -= full  # ffn-all or layer also selected: the whole tensor trains
    if method == "lora":
        full |= halves  # an adapter on a fused module adapts gate and up together
        halves = set()

    names = [p for p in params if p in full or p in halves]
    if not names:
        raise SlamError(
            f"the plan (method {method}, layers {format_layers(chosen)}, modules {','.join(mods)}) matches no "
            f"parameter of {type(model).__name__}; check --modules or pass --ffn-pattern / --attn-pattern"
        )
    return FreezePlan(
        method=method,
        layers=chosen,
        modules=mods,
        extras=extra_list,
        num_layers=n,
        model_type=model_type_of(model),
        trainable_names=names,
        partial={p: _up_half(params[p]) for p in names if p in halves},
        lora=dict(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout) if method == "lora" else None,
        seed=seed,
        ffn_pattern=ffn_pattern,
        attn_pattern=attn_pattern,
    )


def format_layers(layers: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5" (the inverse of :func:`parse_layers`)."""
    parts: list[str] = []
    for i in layers:
        if parts and parts[-1].split("-")[-1] == str(i - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{i}"
        else:
            parts.append(str(i))
    return ",".join(parts)


# ----------------------------------------------------------------------------- applying


def apply_plan(model, plan: FreezePlan, keep_frozen_copy: bool = True) -> dict:
    """Set ``requires_grad`` as ``plan`` says; return a summary (trainable params, fraction...).

    For ``lora`` plans apply the adapters first (``peft.get_peft_model(model,
    LoraConfig(r=..., **lora_targets(model, plan)))``); then only the adapters (and the
    extras' ``modules_to_save`` copies) train.
    Fused tensors get a gradient hook zeroing their frozen half (and, with
    ``keep_frozen_copy``, a CPU copy of it for :func:`restore_frozen_slices`).
    """
    from slam_align.models.accounting import count_parameters

    params = dict(model.named_parameters())
    if plan.method == "lora":
        trainable = [n for n in params if ".lora_" in n or ".modules_to_save." in n]
        if not any(".lora_" in n for n in trainable):
            raise SlamError(
                "lora plan: the model has no LoRA adapter; wrap it first with "
                "peft.get_peft_model(model, peft.LoraConfig(r=..., **lora_targets(model, plan)))"
            )
    else:
        missing = [n for n in plan.trainable_names if n not in params]
        if missing:
            raise SlamError(
                f"the plan names parameter {missing[0]!r} which this {type(model).__name__} does not have "
                f"(was the plan built for another model?)"
            )
        trainable = plan.trainable_names
    if not trainable:
        raise SlamError("the plan matches no parameter of the model")
    wanted = set(trainable)
    for name, p in params.items():
        p.requires_grad_(name in wanted)

    _remove_hooks(model)
    copies = {}
    for name, sl in plan.partial.items():
        p = params[name]
        model._slam_hooks.append(p.register_hook(_zero_frozen_grad(sl)))
        if keep_frozen_copy and p.device.type != "meta":
            copies[name] = (sl, [t.detach().to("cpu", copy=True) for t in _frozen_views(p, sl)])
    model._slam_frozen_copies = copies

    # Frozen embeddings give the first layer's input no grad: gradient checkpointing would then
    # silently skip the backward of checkpointed layers. This hook makes the input require grad.
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embed is not None and not any(p.requires_grad for p in embed.parameters()):
        if hasattr(model, "enable_input_require_grads"):
            if hasattr(model, "disable_input_require_grads"):
                model.disable_input_require_grads()  # applying a plan twice must not stack hooks
            model.enable_input_require_grads()

    counts = count_parameters(model, plan)
    return {
        "method": plan.method,
        "layers": plan.layers,
        "modules": plan.modules,
        "extras": plan.extras,
        "trainable_tensors": len(trainable),
        "partial": {k: asdict(v) for k, v in plan.partial.items()},
        **counts,
    }


def _zero_frozen_grad(sl: Slice):
    def hook(grad):
        grad = grad.clone()
        size = grad.shape[sl.dim]
        if sl.start > 0:
            grad.narrow(sl.dim, 0, sl.start).zero_()
        if sl.stop < size:
            grad.narrow(sl.dim, sl.stop, size - sl.stop).zero_()
        return grad

    return hook


def _frozen_views(p, sl: Slice) -> list:
    size = p.shape[sl.dim]
    views = []
    if sl.start > 0:
        views.append(p.data.narrow(sl.dim, 0, sl.start))
    if sl.stop < size:
        views.append(p.data.narrow(sl.dim, sl.stop, size - sl.stop))
    return views


def _remove_hooks(model) -> None:
    for h in getattr(model, "_slam_hooks", []):
        h.remove()
    model._slam_hooks = []


def restore_frozen_slices(model, plan: FreezePlan | None = None) -> int:
    """Copy back the frozen halves of fused tensors (call after each optimizer step).

    Needed only with weight decay on a partially trainable tensor, or optimizers whose update
    is not zero for a zero gradient. ``plan`` is accepted for symmetry; the copies and their
    slices were recorded by :func:`apply_plan`. Returns the number of tensors restored.
    """
    import torch

    copies = getattr(model, "_slam_frozen_copies", {})
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, (sl, saved) in copies.items():
            for view, copy in zip(_frozen_views(params[name], sl), saved):
                view.copy_(copy.to(view.device, view.dtype))
    return len(copies)


def frozen_slice_callback(model, plan: FreezePlan):
    """A ``transformers.TrainerCallback`` calling :func:`restore_frozen_slices` after every
    optimizer step (for plans with ``plan.partial``; harmless otherwise)."""
    from transformers import TrainerCallback

    class RestoreFrozenSlices(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            restore_frozen_slices(model, plan)

    return RestoreFrozenSlices()


def param_groups(model, weight_decay: float, plan: FreezePlan | None = None) -> list[dict]:
    """Optimizer groups of the trainable parameters: matrices decay; biases, norms and
    partially trainable tensors do not (so a frozen half never moves under AdamW)."""
    partial = set(plan.partial) if plan is not None else set()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (decay if p.dim() >= 2 and name not in partial else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


# ----------------------------------------------------------------------------- LoRA


def lora_targets(model, plan: FreezePlan) -> dict:
    """Keyword arguments for ``peft.LoraConfig`` restricting adapters to the plan's layers.

    Rank, alpha and dropout are not included (the trainer's options; ``plan.lora`` keeps
    the values the plan was built with): ``LoraConfig(r=..., **lora_targets(model, plan))``.

    ``target_modules`` are module names relative to a layer, ``layers_to_transform`` the
    plan's layers and ``layers_pattern`` the layer container's name, so that PEFT reads the
    layer index (never an expert index). Fused MoE expert tensors (no module of their own)
    go in ``target_parameters`` by full name.
    """
    import torch.nn as nn

    infos = find_layers(model, ffn_pattern=plan.ffn_pattern, attn_pattern=plan.attn_pattern)
    modules = dict(model.named_modules())
    chosen = set(plan.trainable_names)
    target_modules: list[str] = []
    target_parameters: list[str] = []
    fan_in_fan_out = False
    for i in plan.layers:
        info = infos[i]
        for name in info.params:
            if name not in chosen:
                continue
            owner, _, pname = name.rpartition(".")
            module = modules.get(owner)
            rel = owner[len(info.prefix) + 1 :]
            if pname == "weight" and module is not None and _is_linear(module):
                target_modules.append(rel)
                fan_in_fan_out |= type(module).__name__ == "Conv1D"
            elif (
                module is not None
                and not isinstance(module, nn.LayerNorm)
                and getattr(module, pname).dim() == 3
            ):
                target_parameters.append(name)
    if not target_modules and not target_parameters:
        raise SlamError(f"lora: the plan's modules {plan.modules} contain no linear layer to adapt")
    kwargs = dict(
        target_modules=sorted(set(target_modules)),
        layers_to_transform=list(plan.layers),
        layers_pattern=infos[0].prefix.rsplit(".", 2)[-2],
        bias="none",
        task_type="CAUSAL_LM",
    )
    if target_parameters:
        kwargs["target_parameters"] = target_parameters
    if fan_in_fan_out:
        kwargs["fan_in_fan_out"] = True
    saved = _extra_modules(model, plan)
    if saved:
        kwargs["modules_to_save"] = saved  # extras train fully beside the adapters
    return kwargs


def _extra_modules(model, plan: FreezePlan) -> list[str]:
    """Names of the modules owning the plan's extras (embeddings, lm head, final norm)."""
    if not plan.extras:
        return []
    infos = find_layers(model, ffn_pattern=plan.ffn_pattern, attn_pattern=plan.attn_pattern)
    layer_params = {p for info in infos for p in info.params}
    names = {n for e in plan.extras for n in extra_names(model, e, layer_params)}
    return sorted({n.rpartition(".")[0] for n in names})


def _is_linear(module) -> bool:
    import torch.nn as nn

    return isinstance(module, nn.Linear) or type(module).__name__ in ("Conv1D", "FalconLinear")
