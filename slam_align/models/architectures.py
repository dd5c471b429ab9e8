"""Where each architecture keeps its decoder layers, FFN projections and attention.

``find_layers(model)`` returns one :class:`LayerInfo` per decoder layer with the full
parameter names (as in ``model.named_parameters()``) of each role. It only reads names
and module types, so it works on a model built on the meta device (no weights).

The table ``ARCHITECTURES`` maps a config's ``model_type`` to an :class:`ArchSpec`:
paths *relative to a decoder layer*, each naming a module (all its parameters) or one
parameter; ``*`` stands for one name component (e.g. an expert index in legacy MoE
layouts, so an expert index is never read as a layer index). Paths that do not exist in a
given layer are simply skipped, which is how MoE models with some dense layers
(Qwen3-MoE ``mlp_only_layers``) and shared experts are covered by one row.

Fused tensors (``ffn_gate_up``: Phi-3's ``mlp.gate_up_proj``, Transformers 5 MoE experts'
``mlp.experts.gate_up_proj`` of shape [E, 2*I, H]) hold the gate in the first half and the
up projection in the second half of dimension -2 (``gate, up = x.chunk(2, dim=-1)`` after
the projection, in the Transformers source of Phi-3, Mixtral, Qwen2-MoE, Qwen3-MoE).

Architectures not in the table: pass ``ffn_pattern`` / ``attn_pattern`` (the CLI's
``--ffn-pattern`` / ``--attn-pattern``), regular expressions searched in the parameter
names relative to a layer (e.g. ``mlp.up_proj.weight``). In ``ffn_pattern`` the named
groups ``up``, ``down``, ``gate`` and ``gate_up`` say which role a match plays; a match
without a named group counts as an up projection (trained under ``--modules ffn``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from slam_align.errors import SlamError

# Dimension of a fused [gate; up] tensor along which gate (first half) and up (second) lie.
FUSED_GATE_UP_DIM = -2


@dataclass(frozen=True)
class ArchSpec:
    """Module / parameter paths relative to one decoder layer (``*`` = one name component)."""

    layers: str  # the ModuleList of decoder layers, relative to the CausalLM
    up: tuple[str, ...] = ()
    down: tuple[str, ...] = ()
    gate: tuple[str, ...] = ()
    gate_up: tuple[str, ...] = ()  # fused [gate; up] along FUSED_GATE_UP_DIM
    attention: tuple[str, ...] = ()
    router: tuple[str, ...] = ()  # MoE routers (never trained by ffn plans)
    experts: tuple[str, ...] = ()  # fused MoE expert modules (their forward holds the activation)


_LLAMA = ArchSpec(
    layers="model.layers",
    up=("mlp.up_proj",),
    down=("mlp.down_proj",),
    gate=("mlp.gate_proj",),
    attention=("self_attn",),
)
# Transformers 5 MoE: fused experts + router; dense MLP layers and shared experts use Llama names.
_MOE = ArchSpec(
    layers="model.layers",
    up=("mlp.up_proj", "mlp.shared_expert.up_proj", "mlp.shared_experts.up_proj", "mlp.experts.*.up_proj"),
    down=(
        "mlp.down_proj",
        "mlp.experts.down_proj",
        "mlp.shared_expert.down_proj",
        "mlp.shared_experts.down_proj",
        "mlp.experts.*.down_proj",
    ),
    gate=(
        "mlp.gate_proj",
        "mlp.shared_expert.gate_proj",
        "mlp.shared_experts.gate_proj",
        "mlp.experts.*.gate_proj",
    ),
    gate_up=("mlp.experts.gate_up_proj",),
    attention=("self_attn",),
    router=("mlp.gate", "mlp.shared_expert_gate"),
    experts=("mlp.experts",),
)
_GPT2 = ArchSpec(  # Conv1D modules: weight is [in, out]
    layers="transformer.h",
    up=("mlp.c_fc",),
    down=("mlp.c_proj",),
    attention=("attn",),
)
_NEOX = ArchSpec(
    layers="gpt_neox.layers",
    up=("mlp.dense_h_to_4h",),
    down=("mlp.dense_4h_to_h",),
    attention=("attention",),
)
_BLOOM = ArchSpec(
    layers="transformer.h",
    up=("mlp.dense_h_to_4h",),
    down=("mlp.dense_4h_to_h",),
    attention=("self_attention",),
)

ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": _LLAMA,
    "mistral": _LLAMA,
    "qwen2": _LLAMA,
    "qwen3": _LLAMA,
    "gemma": _LLAMA,
    "gemma2": _LLAMA,
    "gemma3_text": _LLAMA,
    "gemma3": replace(_LLAMA, layers="model.language_model.layers"),  # multimodal: its text decoder
    "olmo": _LLAMA,
    "olmo2": _LLAMA,
    "granite": _LLAMA,
    "cohere": _LLAMA,
    "stablelm": _LLAMA,
    "phi3": ArchSpec(
        layers="model.layers",
        gate_up=("mlp.gate_up_proj.weight",),
        down=("mlp.down_proj",),
        attention=("self_attn",),
    ),
    "phi": ArchSpec(layers="model.layers", up=("mlp.fc1",), down=("mlp.fc2",), attention=("self_attn",)),
    "starcoder2": ArchSpec(
        layers="model.layers", up=("mlp.c_fc",), down=("mlp.c_proj",), attention=("self_attn",)
    ),
    "gpt2": _GPT2,
    "gpt_bigcode": _GPT2,
    "gptj": ArchSpec(layers="transformer.h", up=("mlp.fc_in",), down=("mlp.fc_out",), attention=("attn",)),
    "gpt_neox": _NEOX,
    "opt": ArchSpec(
        layers="model.decoder.layers",
        up=("fc1",),
        down=("fc2",),
        attention=("self_attn",),
    ),
    "bloom": _BLOOM,
    "falcon": _BLOOM,
    "mixtral": _MOE,
    "qwen2_moe": _MOE,
    "qwen3_moe": _MOE,
}


@dataclass
class LayerInfo:
    """One decoder layer: its index, module, and the full parameter names of each role."""

    index: int
    prefix: str  # e.g. "model.layers.3"
    module: object  # the nn.Module of the layer
    ffn_up: list[str] = field(default_factory=list)
    ffn_down: list[str] = field(default_factory=list)
    ffn_gate: list[str] = field(default_factory=list)
    ffn_gate_up: list[str] = field(default_factory=list)  # fused [gate; up]: see FUSED_GATE_UP_DIM
    attention: list[str] = field(default_factory=list)
    router: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)  # every parameter of the layer (norms too)
    # Modules whose INPUT is the FFN activation (act(gate)*up, or act(up)): the down projections
    # that are nn.Modules. Fused MoE experts have no such module: see ``ffn_experts``.
    ffn_act_modules: list[object] = field(default_factory=list)
    ffn_experts: list[object] = field(default_factory=list)  # fused expert modules (MoE)

    @property
    def ffn(self) -> list[str]:
        return self.ffn_up + self.ffn_down + self.ffn_gate + self.ffn_gate_up


def model_type_of(model) -> str:
    config = getattr(model, "config", None)
    return str(getattr(config, "model_type", "") or "")


def supported_architectures() -> list[str]:
    return sorted(ARCHITECTURES)


def _path_regex(path: str) -> re.Pattern:
    """``mlp.experts.*.up_proj`` -> a regex matching that module's parameters or that parameter."""
    body = r"\.".join(r"[^.]+" if part == "*" else re.escape(part) for part in path.split("."))
    return re.compile(rf"^{body}(\..+)?$")


def _num_layers_from_config(model) -> int | None:
    config = getattr(model, "config", None)
    if config is None:
        return None
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    for name in ("num_hidden_layers", "n_layer", "num_layers"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    return None


def _find_layer_container(model, path: str | None) -> tuple[str, object]:
    """The decoder layers' ModuleList: by its table path (also inside wrappers such as PEFT)."""
    import torch.nn as nn

    lists = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if path is not None:
        hits = [(n, m) for n, m in lists if n == path or n.endswith("." + path)]
        if hits:
            return min(hits, key=lambda nm: len(nm[0]))
    # Unknown architecture: the ModuleList with as many entries as the config has layers.
    want = _num_layers_from_config(model)
    hits = [(n, m) for n, m in lists if want is None or len(m) == want]
    if not hits:
        raise SlamError(
            f"cannot find the decoder layers of {type(model).__name__} (no nn.ModuleList of "
            f"{want} layers); this architecture is not supported"
        )
    # Prefer the shallowest list (the decoder stack, not a per-layer list of heads or experts).
    return min(hits, key=lambda nm: (nm[0].count("."), -len(nm[1])))


def _compile(pattern: str, flag: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise SlamError(f"{flag} {pattern!r} is not a valid regular expression: {e}") from None


def find_layers(model, ffn_pattern: str | None = None, attn_pattern: str | None = None) -> list[LayerInfo]:
    """One :class:`LayerInfo` per decoder layer of ``model`` (a CausalLM, possibly on meta).

    ``ffn_pattern`` / ``attn_pattern`` (regexes over parameter names relative to a layer)
    replace the table's FFN / attention names; they are required for an architecture that
    is not in the table.
    """
    model_type = model_type_of(model)
    spec = ARCHITECTURES.get(model_type)
    if spec is None and not ffn_pattern:
        raise SlamError(
            f"architecture '{model_type or type(model).__name__}' is not in slam_align's table "
            f"(known: {', '.join(supported_architectures())}); name its modules by regex over "
            r"parameter names relative to a layer instead, e.g. --ffn-pattern "
            r"'mlp\.(?P<up>up_proj)|mlp\.(?P<down>down_proj)' --attn-pattern 'self_attn'"
        )
    container_name, container = _find_layer_container(model, spec.layers if spec else None)
    ffn_re = _compile(ffn_pattern, "--ffn-pattern") if ffn_pattern else None
    attn_re = _compile(attn_pattern, "--attn-pattern") if attn_pattern else None

    roles: dict[str, list[re.Pattern]] = {}
    if spec is not None:
        for role, paths in (
            ("ffn_up", spec.up),
            ("ffn_down", spec.down),
            ("ffn_gate", spec.gate),
            ("ffn_gate_up", spec.gate_up),
            ("attention", spec.attention),
            ("router", spec.router),
        ):
            roles[role] = [_path_regex(p) for p in paths]

    layers = []
    for i, layer in enumerate(container):
        prefix = f"{container_name}.{i}"
        info = LayerInfo(index=i, prefix=prefix, module=layer)
        for rel, _param in layer.named_parameters():
            full = f"{prefix}.{rel}"
            info.params.append(full)
            role = _role_of(rel, roles, ffn_re, attn_re)
            if role is not None:
                getattr(info, role).append(full)
        _find_act_modules(info, layer, spec, ffn_re)
        layers.append(info)
    return layers


def _role_of(rel: str, roles: dict[str, list[re.Pattern]], ffn_re, attn_re) -> str | None:
    if ffn_re is not None:
        m = ffn_re.search(rel)
        if m:
            named = [g for g in ("gate_up", "gate", "down", "up") if m.groupdict().get(g) is not None]
            return "ffn_" + named[0] if named else "ffn_up"
    if attn_re is not None and attn_re.search(rel):
        return "attention"
    for role, regexes in roles.items():
        if ffn_re is not None and role.startswith("ffn_"):
            continue  # the pattern replaces the table's FFN names
        if attn_re is not None and role == "attention":
            continue
        if any(r.match(rel) for r in regexes):
            return role
    return None


def _find_act_modules(info: LayerInfo, layer, spec: ArchSpec | None, ffn_re) -> None:
    """Modules whose forward input is the FFN activation: those whose ``weight`` is a down projection."""
    down = set(info.ffn_down)
    experts = [_path_regex(p) for p in spec.experts] if spec is not None and ffn_re is None else []
    for rel, module in layer.named_modules():
        if not rel:
            continue
        if any(r.match(rel) for r in experts) and any(True for _ in module.parameters(recurse=False)):
            info.ffn_experts.append(module)  # fused experts: the activation lives inside forward
        elif f"{info.prefix}.{rel}.weight" in down:
            info.ffn_act_modules.append(module)
