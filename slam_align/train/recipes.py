"""The training methods: which parameters each trains, and in how many stages.

Every method runs on the same Trainer set-up (:mod:`slam_align.train.trainer`); a recipe
only decides what is trainable (through the freezing plan of :mod:`slam_align.models.plan`)
and the stages. Adding a method = one function and one row in ``RECIPES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from slam_align.errors import SlamError
from slam_align.models.plan import apply_plan, build_plan, lora_targets


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    prepare: Callable  # (model, options) -> (model, plan)
    stages: tuple[str, ...] = ("train",)
    subset: bool = True  # trains a subset of the base's tensors: write a delta checkpoint
    lora: bool = False


def _plan(model, options, method: str, modules: str | None):
    return build_plan(
        model,
        method=method,
        layers=options.layers,
        modules=modules,
        extras=tuple(options.extras),
        seed=options.seed,
        num_random_layers=options.num_random_layers,
        ffn_pattern=options.ffn_pattern,
        attn_pattern=options.attn_pattern,
        lora_r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
    )


def _apply(model, plan, options) -> None:
    apply_plan(model, plan)
    if not options.gradient_checkpointing and getattr(model, "_require_grads_hook", None) is not None:
        # apply_plan makes the embeddings' output require grad for *reentrant* checkpointing.
        # Without checkpointing that only buys an unused gradient w.r.t. the first layer's
        # input (an extra backward matmul per step), so take the hook off again.
        model.disable_input_require_grads()


def _planned(method: str, default_modules: str | None):
    def prepare(model, options):
        plan = _plan(model, options, method, options.modules or default_modules)
        _apply(model, plan, options)
        return model, plan

    return prepare


def _full(model, options):
    plan = build_plan(model, method="full")
    _apply(model, plan, options)
    return model, plan


def _lora(model, options):
    """PEFT adapters on the plan's modules of the chosen layers; everything else frozen."""
    from peft import LoraConfig, get_peft_model

    plan = _plan(model, options, "lora", options.modules or "ffn")
    model = get_peft_model(model, LoraConfig(**lora_targets(model, plan)))
    apply_plan(model, plan)  # only the adapters train; input grads for gradient checkpointing
    return model, plan


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe("slam", "FFN up/down of the selected layers, one stage (SLAM)", _planned("slam", "ffn")),
        Recipe("full", "all parameters, one stage", _full, subset=False),
        Recipe(
            "two-stage",
            "QAlign: full fine-tuning on question alignment, then on responses",
            _full,
            stages=("stage1", "stage2"),
            subset=False,
        ),
        Recipe("lora", "LoRA adapters on the selected layers' modules", _lora, subset=False, lora=True),
        Recipe(
            "attention", "attention projections of the selected layers", _planned("attention", "attention")
        ),
        Recipe("random", "FFN up/down of k random layers (seeded)", _planned("random", "ffn")),
    ]
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise SlamError(f"unknown method '{name}'; expected one of: {', '.join(RECIPES)}")
    return RECIPES[name]
