"""Parameter counts per layer and module, and the GPU memory a training run needs.

Everything here reads shapes only, so it runs on a model built on the meta device.
The memory formula is documented in docs/models.md ("Memory estimate").
"""

from __future__ import annotations

from slam_align.errors import SlamError
from slam_align.models.architectures import ARCHITECTURES, find_layers, model_type_of
from slam_align.models.freeze_plan import FreezePlan
from slam_align.models.lora import lora_adapter_params

GIB = 1024**3

# Table columns: (label, LayerInfo roles). "other" is what is left in the layer (norms...).
PARTS = (
    ("attention", ("attention",)),
    ("ffn up", ("ffn_up",)),
    ("ffn down", ("ffn_down",)),
    ("ffn gate", ("ffn_gate",)),
    ("ffn gate_up", ("ffn_gate_up",)),
    ("router", ("router",)),
)


def numel(p) -> int:
    """Elements of a parameter; a DeepSpeed ZeRO-3 partition keeps its full size in ``ds_numel``."""
    return int(getattr(p, "ds_numel", p.numel()))


def _trainable_numel(p, name: str, plan: FreezePlan) -> int:
    sl = plan.partial.get(name)
    if sl is None:
        return numel(p)
    shape = getattr(p, "ds_shape", p.shape)
    return numel(p) // shape[sl.dim] * (sl.stop - sl.start)


def count_parameters(model, plan: FreezePlan) -> dict:
    """``total_params``, ``trainable_params`` (fused tensors: only the trainable half) and
    ``trainable_fraction`` (0..1), on a meta-device model or a loaded one (ZeRO-3 partitions
    count at full size). LoRA: the adapters' parameters (added to the total)."""
    params = dict(model.named_parameters())
    has_adapters = any(".lora_" in n for n in params)
    if plan.method == "lora" and has_adapters:
        total = sum(numel(p) for p in params.values())
        trainable = sum(numel(p) for n, p in params.items() if p.requires_grad or ".lora_" in n)
    elif plan.method == "lora":
        # PEFT keeps the frozen original of a module in modules_to_save and trains a copy
        infos = find_layers(model, ffn_pattern=plan.ffn_pattern, attn_pattern=plan.attn_pattern)
        in_layers = {n for info in infos for n in info.params}
        extras = sum(numel(params[n]) for n in plan.trainable_names if n not in in_layers)
        trainable = lora_adapter_params(model, plan) + extras
        total = sum(numel(p) for p in params.values()) + trainable
    else:
        total = sum(numel(p) for p in params.values())
        trainable = sum(_trainable_numel(params[n], n, plan) for n in plan.trainable_names)
    return {
        "total_params": total,
        "trainable_params": trainable,
        "trainable_fraction": trainable / total if total else 0.0,
    }


def layer_table(model, plan: FreezePlan) -> list[dict]:
    """One row per decoder layer: params per part and the trainable count of each part;
    then rows for what lies outside the layers (embeddings, lm_head, final norm...)."""
    params = dict(model.named_parameters())
    chosen = set(plan.trainable_names)
    infos = find_layers(model, ffn_pattern=plan.ffn_pattern, attn_pattern=plan.attn_pattern)
    lora = plan.method == "lora"
    rows = []
    in_layers: set[str] = set()
    for info in infos:
        row: dict = {"layer": info.index, "parts": {}, "params": 0, "trainable": 0}
        assigned: set[str] = set()
        for label, roles in PARTS:
            names = [n for role in roles for n in getattr(info, role)]
            assigned.update(names)
            if names:
                row["parts"][label] = _part(names, params, chosen, plan, adapters=lora)
        rest = [n for n in info.params if n not in assigned]
        if rest:
            row["parts"]["other"] = _part(rest, params, chosen, plan, adapters=lora)
        row["params"] = sum(p["params"] for p in row["parts"].values())
        row["trainable"] = sum(p["trainable"] for p in row["parts"].values())
        in_layers.update(info.params)
        rows.append(row)
    outside = [n for n in params if n not in in_layers]
    for label, names in _outside_groups(model, outside).items():
        part = _part(names, params, chosen, plan, adapters=False)  # lora extras train fully
        rows.append({"layer": None, "name": label, "parts": {label: part}, **part})
    return rows


def _part(names, params, chosen, plan, adapters: bool) -> dict:
    """Sizes of one table cell; with ``adapters`` (LoRA) the trainable count is the adapters'."""
    total = sum(params[n].numel() for n in names)
    picked = [n for n in names if n in chosen]
    if adapters:
        r = (plan.lora or {}).get("r", 8)
        shapes = [params[n].shape for n in picked if params[n].dim() in (2, 3) and not n.endswith(".bias")]
        trainable = sum(r * (s[-1] + s[-2]) * (s[0] if len(s) == 3 else 1) for s in shapes)
    else:
        trainable = sum(_trainable_numel(params[n], n, plan) for n in picked)
    return {
        "params": total,
        "trainable": trainable,
        "adapted": adapters and bool(picked),
        "partial": any(n in plan.partial for n in names),
    }


def _outside_groups(model, names: list[str]) -> dict[str, list[str]]:
    def ident(getter):
        module = getattr(model, getter)() if hasattr(model, getter) else None
        return {id(p) for p in module.parameters()} if module is not None else set()

    embed, head = ident("get_input_embeddings"), ident("get_output_embeddings")
    params = dict(model.named_parameters())
    groups: dict[str, list[str]] = {}
    for n in names:
        pid = id(params[n])
        label = "embeddings" if pid in embed else "lm_head" if pid in head else "other"
        groups.setdefault(label, []).append(n)
    return groups


# ----------------------------------------------------------------------------- memory

# precision -> (bytes per weight and gradient, optimizer bytes per trainable parameter)
#   bf16 / fp16: 16-bit weights, fp32 AdamW m and v (8 B) + fp32 master copy (4 B): mixed
#                precision as DeepSpeed, FSDP mixed precision or Apex keep it
#   bf16-pure:   16-bit weights and 16-bit AdamW m and v (4 B), no master copy: what
#                torch.optim.AdamW does on a model loaded in bf16 (the Trainer without DeepSpeed)
#   fp32:        fp32 weights, fp32 m and v (8 B)
PRECISIONS = {"bf16": (2, 12), "fp16": (2, 12), "bf16-pure": (2, 4), "fp32": (4, 8)}


def model_dims(config, model=None) -> dict:
    """Sizes the activation estimate needs, read from a (text) config."""
    c = config.get_text_config() if hasattr(config, "get_text_config") else config

    def first(*names, default=None):
        for n in names:
            v = getattr(c, n, None)
            if isinstance(v, int) and v > 0:
                return v
        return default

    hidden = first("hidden_size", "n_embd", "d_model")
    layers = first("num_hidden_layers", "n_layer", "num_layers")
    heads = first("num_attention_heads", "n_head", default=1)
    kv_heads = first("num_key_value_heads", "num_kv_heads", default=heads)
    if getattr(c, "multi_query", False) and not getattr(c, "new_decoder_architecture", False):
        kv_heads = 1
    head_dim = first("head_dim", default=hidden // heads)
    inter = first("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden)
    experts_per_tok = first("num_experts_per_tok", "num_experts_per_token")
    if experts_per_tok and first("num_local_experts", "num_experts"):
        inter = experts_per_tok * first("moe_intermediate_size", default=inter)
        inter += first("shared_expert_intermediate_size", default=0)
    gated = True
    if model is not None:
        info = find_layers(model, None, None)[0] if _known(model) else None
        gated = bool(info and (info.ffn_gate or info.ffn_gate_up))
    rates = [
        getattr(c, n, 0)
        for n in ("attn_pdrop", "resid_pdrop", "attention_dropout", "hidden_dropout", "dropout")
    ]
    dropout = max(
        [float(r) for r in rates if isinstance(r, int | float) and not isinstance(r, bool)] or [0.0]
    )
    return {
        "dropout": dropout,
        "hidden": hidden,
        "layers": layers,
        "heads": heads,
        "kv_dim": kv_heads * head_dim,
        "intermediate": inter,
        "vocab": first("vocab_size", default=0),
        "gated": gated,
    }


def _known(model) -> bool:
    return model_type_of(model) in ARCHITECTURES


def estimate_memory(
    total_params: int,
    trainable_params: int,
    dims: dict,
    *,
    gpus: int = 1,
    micro_batch_size: int = 1,
    seq_len: int = 1024,
    zero: int = 0,
    precision: str = "bf16",
    gradient_checkpointing: bool = True,
    gpu_memory_gib: float = 80.0,
) -> dict:
    """Per-GPU bytes for training with AdamW (see docs/models.md for the formula)."""
    if precision not in PRECISIONS:
        raise SlamError(f"precision: unknown value {precision!r}; expected one of: {', '.join(PRECISIONS)}")
    w, adam = PRECISIONS[precision]
    weights = total_params * w
    gradients = trainable_params * w
    optimizer = trainable_params * adam
    if zero >= 1:
        optimizer /= gpus
    if zero >= 2:
        gradients /= gpus
    if zero >= 3:
        weights /= gpus
    act = activation_bytes(dims, micro_batch_size, seq_len, w, gradient_checkpointing)
    total = weights + gradients + optimizer + act["total"]
    notes = []
    if dims.get("dropout", 0) > 0:
        notes.append(
            f"the config has dropout {dims['dropout']:g}: dropout masks and attention probabilities "
            "come on top of the activation estimate (several times more activation memory)"
        )
    return {
        "gpus": gpus,
        "zero": zero,
        "precision": precision,
        "micro_batch_size": micro_batch_size,
        "seq_len": seq_len,
        "gradient_checkpointing": gradient_checkpointing,
        "weights_bytes": int(weights),
        "gradients_bytes": int(gradients),
        "optimizer_states_bytes": int(optimizer),
        "activations_bytes": int(act["total"]),
        "activations": {k: int(v) for k, v in act.items() if k != "total"},
        "total_bytes": int(total),
        "total_gib": round(total / GIB, 2),
        "gpu_memory_gib": gpu_memory_gib,
        "fits": total <= gpu_memory_gib * GIB,
        "notes": notes,
    }


def activation_bytes(dims: dict, batch: int, seq: int, elem: int, checkpointing: bool) -> dict:
    """Activations kept for backward, in bytes.

    Per token, one layer saves about 6*H + 2*kv (norm inputs/outputs, q, k, v, attention
    output; memory-efficient attention, no T x T scores) plus 4*I for a gated FFN (gate, up,
    act(gate), product) or 2*I otherwise. With gradient checkpointing only each layer's
    input (H) is kept, plus one layer's full activations while it is recomputed.
    Logits: the lm head's output plus an fp32 copy and its fp32 log-softmax (elem + 8 B).
    """
    tokens = batch * seq
    h, n = dims["hidden"], dims["layers"]
    per_layer = 6 * h + 2 * dims["kv_dim"] + (4 if dims["gated"] else 2) * dims["intermediate"]
    one_layer = tokens * per_layer * elem
    layers = tokens * h * elem * n + one_layer if checkpointing else one_layer * n
    logits = tokens * dims["vocab"] * (elem + 8)
    return {"layers": layers, "logits": logits, "total": layers + logits}
