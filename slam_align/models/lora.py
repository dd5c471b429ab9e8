"""LoRA from a freezing plan: PEFT adapters on exactly the plan's modules and layers.

``peft.get_peft_model(model, lora_config(model, plan))`` adapts the plan's modules of the
plan's layers with the plan's rank, alpha and dropout; extras (embeddings, lm head,
final norm) train fully beside the adapters (``modules_to_save``).
"""

from __future__ import annotations

from slam_align.errors import SlamError
from slam_align.models.architectures import find_layers
from slam_align.models.freeze_plan import FreezePlan, extra_names


def lora_targets(model, plan: FreezePlan) -> dict:
    """Keyword arguments for ``peft.LoraConfig`` restricting adapters to the plan's layers
    (rank, alpha and dropout are :func:`lora_config`'s business).

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


def lora_config(model, plan: FreezePlan):
    """The ``peft.LoraConfig`` of a lora plan: its targets and its rank, alpha and dropout."""
    from peft import LoraConfig

    if plan.lora is None:
        raise SlamError(f"lora_config: the plan's method is {plan.method}, not lora")
    return LoraConfig(**plan.lora, **lora_targets(model, plan))


def lora_adapter_params(model, plan: FreezePlan) -> int:
    """Parameters LoRA adds: r*(in+out) per adapted matrix (times the experts of a 3-D tensor)."""
    kw = lora_targets(model, plan)
    r, targets = (plan.lora or {}).get("r", 8), set(kw["target_modules"])
    target_params = set(kw.get("target_parameters", ()))
    params = dict(model.named_parameters())
    infos = find_layers(model, ffn_pattern=plan.ffn_pattern, attn_pattern=plan.attn_pattern)
    total = 0
    for i in plan.layers:
        info = infos[i]
        for name in info.params:
            p = params[name]
            owner = name[len(info.prefix) + 1 :].rpartition(".")[0]
            if name.endswith(".weight") and p.dim() == 2 and owner in targets:
                total += r * (p.shape[0] + p.shape[1])
            elif name in target_params:
                total += p.shape[0] * r * (p.shape[1] + p.shape[2])
    return total


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
