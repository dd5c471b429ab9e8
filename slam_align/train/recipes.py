"""The training methods: which parameters each trains, and in how many stages.

Every method runs on the same Trainer set-up (:mod:`slam_align.train.trainer`); a recipe
only decides what is trainable (through the freezing plan of
:mod:`slam_align.models.freeze_plan`) and the stages. Adding a method = one row in
``RECIPES`` (and, if it trains something new, one plan method).
"""

from __future__ import annotations

from dataclasses import dataclass

from slam_align.errors import SlamError
from slam_align.models.apply_plan import FrozenParams, apply_plan
from slam_align.models.freeze_plan import FreezePlan, build_plan


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    stages: tuple[str, ...] = ("train",)
    subset: bool = True  # trains a subset of the base's tensors: write a delta checkpoint
    lora: bool = False

    def prepare(self, model, options) -> tuple[object, FreezePlan, FrozenParams]:
        """Freeze ``model`` for this method; return (the model to train, its plan, the handle).

        ``options`` is a :class:`~slam_align.models.freeze_plan.PlanSpec` (``TrainOptions``).
        LoRA wraps the model in PEFT adapters first, so the returned model is a new object.
        """
        plan = build_plan(model, options)
        if self.lora:
            from peft import get_peft_model

            from slam_align.models.lora import lora_config

            model = get_peft_model(model, lora_config(model, plan))
        # Reentrant gradient checkpointing needs the (frozen) embeddings' output to require
        # grad; without checkpointing that only buys an unused backward matmul per step.
        frozen = apply_plan(model, plan, input_grads=bool(options.gradient_checkpointing))
        return model, plan, frozen


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in [
        Recipe("slam", "FFN up/down of the selected layers, one stage (SLAM)"),
        Recipe("full", "all parameters, one stage", subset=False),
        Recipe(
            "two-stage",
            "QAlign: full fine-tuning on question alignment, then on responses",
            stages=("stage1", "stage2"),
            subset=False,
        ),
        Recipe("lora", "LoRA adapters on the selected layers' modules", subset=False, lora=True),
        Recipe("attention", "attention projections of the selected layers"),
        Recipe("random", "FFN up/down of k random layers (seeded)"),
    ]
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise SlamError(f"unknown method '{name}'; expected one of: {', '.join(RECIPES)}")
    return RECIPES[name]
