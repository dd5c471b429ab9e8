"""Model surgery: find layers and modules, freezing plans, accounting, loading.

- :mod:`~slam_align.models.architectures`: ``find_layers(model)`` and the per-architecture table.
- :mod:`~slam_align.models.layers`: the ``--layers`` syntax and ``layers.json`` (read and write).
- :mod:`~slam_align.models.freeze_plan`: ``PlanSpec`` (the plan options) -> ``build_plan`` -> ``FreezePlan``.
- :mod:`~slam_align.models.apply_plan`: ``apply_plan(model, plan)`` -> a ``FrozenParams`` handle.
- :mod:`~slam_align.models.lora`: ``lora_config`` / ``lora_targets`` of a lora plan.
- :mod:`~slam_align.models.accounting`: parameter counts and ``estimate_memory``.
- :mod:`~slam_align.models.loading`: ``load_config``, ``meta_model``, ``load_model``, ``load_tokenizer``.
- :mod:`~slam_align.models.plan`: the ``slam plan`` command.
- :mod:`~slam_align.models.tiny`: tiny random models of real architectures for tests and the demo.

Submodules are imported on use, so importing this package does not import torch.
"""
