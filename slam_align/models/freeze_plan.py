"""Freezing plans: which parameters a training method trains (pure: nothing is changed).

A plan is *layers x modules* (+ extras) for a *method*; :class:`PlanSpec` holds the
options that describe it, shared by ``slam plan`` and ``slam train`` (both inherit it),
and :func:`build_plan` turns a spec and a model (the meta device is fine) into a
:class:`FreezePlan`. Applying a plan is :mod:`slam_align.models.apply_plan`; LoRA's
adapter targets are :mod:`slam_align.models.lora`.

=========== ============================================================================
method      trains
=========== ============================================================================
slam        ``modules`` (default ``ffn``) of the chosen layers
full        every parameter (``two-stage`` trains like ``full``, in two stages)
attention   ``modules`` (default ``attention``) of the chosen layers
random      ``modules`` (default ``ffn``) of ``num_random_layers`` distinct layers drawn with ``seed``
lora        PEFT LoRA adapters on the ``modules`` (default ``ffn``) of the chosen layers
=========== ============================================================================

Modules: ``ffn`` = up and down projections, gate frozen (exactly the SLAM paper's code);
``ffn-all`` = gate too; ``attention``; ``layer`` = everything in the layer (norms too).
Extras: ``embeddings`` (input token embeddings), ``lm-head``, ``norm`` (the final norm).

Fused [gate; up] tensors (Phi-3 ``mlp.gate_up_proj``, MoE ``mlp.experts.gate_up_proj``)
under ``ffn``: only the up half may change; ``plan.partial`` maps such a tensor to its
trainable :class:`Slice` (see :mod:`~slam_align.models.apply_plan` for how the gate half
is kept still).
"""

from __future__ import annotations

import dataclasses
import random
import re
from dataclasses import asdict, dataclass, field

from slam_align.config import Options, option
from slam_align.errors import SlamError
from slam_align.models.architectures import FUSED_GATE_UP_DIM, LayerInfo, find_layers, model_type_of
from slam_align.models.layers import LAYERS_HELP, format_layers, parse_layers

METHODS = ("slam", "full", "two-stage", "lora", "attention", "random")
MODULES = ("ffn", "ffn-all", "attention", "layer")
EXTRAS = ("embeddings", "lm-head", "norm")
DEFAULT_MODULES = {"slam": ["ffn"], "random": ["ffn"], "attention": ["attention"], "lora": ["ffn"]}
# Methods that train like another as far as the plan goes.
PLAN_METHOD = {"two-stage": "full"}


@dataclass(kw_only=True)
class PlanSpec(Options):
    """What to train: the plan options of ``slam plan`` and ``slam train`` (one definition)."""

    method: str = option("slam", help="what to train", choices=list(METHODS))
    layers: str = option("0-5", help=f"{LAYERS_HELP}; for slam, attention and lora")
    modules: list[str] = option(
        [],
        help="per layer: ffn (up+down, gate frozen: SLAM), ffn-all (gate too), attention, layer "
        "(comma-separated; default: ffn, or attention for --method attention)",
    )
    extras: list[str] = option([], help="also train: embeddings, lm-head, norm (comma-separated)")
    seed: int = option(42, help="seed of everything random: initialisation, data order, --method random")
    num_random_layers: int = option(6, help="layers drawn by --method random (seeded)", at_least=1)
    ffn_pattern: str | None = option(
        None,
        help="regex over parameter names relative to a layer naming the FFN (for architectures "
        "not in the table); named groups up, down, gate, gate_up say which is which",
    )
    attn_pattern: str | None = option(None, help="regex naming the attention parameters relative to a layer")
    lora_r: int = option(8, help="LoRA rank (--method lora)", at_least=1)
    lora_alpha: int = option(16, help="LoRA alpha (--method lora)", at_least=1)
    lora_dropout: float = option(0.0, help="LoRA dropout (--method lora)", at_least=0, at_most=0.99)

    def __post_init__(self):
        super().__post_init__()
        # Checked (and spelled one way: lm_head -> lm-head) as soon as options are built.
        self.modules = _as_list(self.modules, "modules", MODULES)
        self.extras = _as_list(self.extras, "extras", EXTRAS)

    def plan_spec(self) -> PlanSpec:
        """Just the plan fields (an options object of a subclass carries more)."""
        return PlanSpec(**{f.name: getattr(self, f.name) for f in dataclasses.fields(PlanSpec)})


@dataclass(frozen=True)
class Slice:
    """The trainable part of a partially trainable tensor: ``[start, stop)`` along ``dim``."""

    dim: int
    start: int
    stop: int


@dataclass
class FreezePlan:
    method: str  # the plan's method (two-stage plans as full)
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

    def summary(self) -> dict:
        """The short description a run records (timing.json, the delta manifest)."""
        return {
            "method": self.method,
            "layers": list(self.layers),
            "modules": list(self.modules),
            "trainable_tensors": len(self.trainable_names),
        }


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


def build_plan(model, spec: PlanSpec | None = None, **overrides) -> FreezePlan:
    """Which parameters ``spec`` (any :class:`PlanSpec`, e.g. ``TrainOptions``; fields may be
    overridden by keyword) trains on ``model`` (a CausalLM; the meta device is fine)."""
    spec = dataclasses.replace((spec or PlanSpec()).plan_spec(), **overrides)
    method = PLAN_METHOD.get(spec.method, spec.method)
    if method not in METHODS:
        raise SlamError(f"method: unknown method {spec.method!r}; expected one of: {', '.join(METHODS)}")
    infos = find_layers(model, ffn_pattern=spec.ffn_pattern, attn_pattern=spec.attn_pattern)
    n = len(infos)
    mods = _as_list(spec.modules, "modules", MODULES) or DEFAULT_MODULES.get(method, [])
    extra_list = _as_list(spec.extras, "extras", EXTRAS)
    params = dict(model.named_parameters())

    if method == "full":
        chosen, mods, extra_list = list(range(n)), ["all"], []
    elif method == "random":
        if not 1 <= spec.num_random_layers <= n:
            raise SlamError(
                f"num-random-layers: {spec.num_random_layers} is not between 1 and the model's {n} layers"
            )
        chosen = sorted(random.Random(spec.seed).sample(range(n), spec.num_random_layers))
    else:
        chosen = parse_layers(spec.layers, n)

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
    lora = None
    if method == "lora":
        lora = dict(r=spec.lora_r, lora_alpha=spec.lora_alpha, lora_dropout=spec.lora_dropout)
    return FreezePlan(
        method=method,
        layers=chosen,
        modules=mods,
        extras=extra_list,
        num_layers=n,
        model_type=model_type_of(model),
        trainable_names=names,
        partial={p: _up_half(params[p]) for p in names if p in halves},
        lora=lora,
        seed=spec.seed,
        ffn_pattern=spec.ffn_pattern,
        attn_pattern=spec.attn_pattern,
    )
