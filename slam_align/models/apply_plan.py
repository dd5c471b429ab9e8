"""Applying a freezing plan to a model: ``requires_grad``, and the frozen half of fused tensors.

:func:`apply_plan` sets ``requires_grad`` as the plan says and returns a
:class:`FrozenParams` handle that owns everything the plan needs beyond that:

- for fused [gate; up] tensors trained under ``ffn`` (only the up half), a gradient hook
  that zeroes the gate half's gradient, so Adam-style optimizers (state starting at zero)
  never move it, and a CPU copy of the gate half. Weight decay would still shrink it, so
  either keep partial tensors out of weight decay (:meth:`FrozenParams.param_groups`, the
  trainer does the same) or call :meth:`FrozenParams.restore` after each optimizer step
  (works with any optimizer);
- frozen input embeddings with gradient checkpointing: the first layer's input must
  require grad, or reentrant checkpointing silently skips the backward of checkpointed
  layers (``input_grads=True`` makes it so).

Nothing is stored on the model: the handle is the one place these hooks live, and
:meth:`FrozenParams.remove` takes them off again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from slam_align.errors import SlamError
from slam_align.models.freeze_plan import FreezePlan, Slice


@dataclass
class FrozenParams:
    """What :func:`apply_plan` did to a model (and how to undo or maintain it)."""

    model: object
    plan: FreezePlan
    trainable: list[str]
    hooks: list = field(default_factory=list)
    copies: dict = field(default_factory=dict)  # name -> (slice, [frozen CPU views])
    input_grads: bool = False

    def restore(self) -> int:
        """Copy back the frozen halves of fused tensors; return the number of tensors restored."""
        import torch

        params = dict(self.model.named_parameters())
        with torch.no_grad():
            for name, (sl, saved) in self.copies.items():
                for view, copy in zip(_frozen_views(params[name], sl), saved):
                    view.copy_(copy.to(view.device, view.dtype))
        return len(self.copies)

    def param_groups(self, weight_decay: float) -> list[dict]:
        """Optimizer groups of the trainable parameters: matrices decay; biases, norms and
        partially trainable tensors do not (so a frozen half never moves under AdamW)."""
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            (decay if p.dim() >= 2 and name not in self.plan.partial else no_decay).append(p)
        return [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]

    def remove(self) -> None:
        """Take the gradient hooks (and the input-grad hook) off the model."""
        for h in self.hooks:
            h.remove()
        self.hooks = []
        if self.input_grads and hasattr(self.model, "disable_input_require_grads"):
            self.model.disable_input_require_grads()
            self.input_grads = False

    def summary(self) -> dict:
        return {
            **self.plan.summary(),
            "extras": self.plan.extras,
            "trainable_tensors": len(self.trainable),
            "partial": {k: asdict(v) for k, v in self.plan.partial.items()},
        }


def apply_plan(model, plan: FreezePlan, *, keep_frozen_copy: bool = True, input_grads: bool = True):
    """Set ``requires_grad`` as ``plan`` says; return the :class:`FrozenParams` handle.

    For ``lora`` plans apply the adapters first (``peft.get_peft_model(model,
    lora_config(model, plan))``); then only the adapters (and the extras'
    ``modules_to_save`` copies) train. ``input_grads``: with frozen input embeddings, make
    their output require grad (needed for reentrant gradient checkpointing only; without
    checkpointing it costs an unused backward matmul per step).
    """
    params = dict(model.named_parameters())
    if plan.method == "lora":
        trainable = [n for n in params if ".lora_" in n or ".modules_to_save." in n]
        if not any(".lora_" in n for n in trainable):
            raise SlamError(
                "lora plan: the model has no LoRA adapter; wrap it first with "
                "peft.get_peft_model(model, lora_config(model, plan))"
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

    handle = FrozenParams(model, plan, list(trainable))
    for name, sl in plan.partial.items():
        p = params[name]
        handle.hooks.append(p.register_hook(_zero_frozen_grad(sl)))
        if keep_frozen_copy and p.device.type != "meta":
            handle.copies[name] = (sl, [t.detach().to("cpu", copy=True) for t in _frozen_views(p, sl)])

    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    frozen_embed = embed is not None and not any(p.requires_grad for p in embed.parameters())
    if input_grads and frozen_embed and hasattr(model, "enable_input_require_grads"):
        if hasattr(model, "disable_input_require_grads") and getattr(model, "_require_grads_hook", None):
            model.disable_input_require_grads()  # applying a plan twice must not stack hooks
        model.enable_input_require_grads()
        handle.input_grads = True
    return handle


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
