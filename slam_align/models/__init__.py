"""Model surgery: find layers and modules, freezing plans, accounting, loading.

- :mod:`~slam_align.models.architectures`: ``find_layers(model)`` and the per-architecture table.
- :mod:`~slam_align.models.plan`: ``parse_layers``, ``build_plan``, ``apply_plan``, ``lora_targets``.
- :mod:`~slam_align.models.accounting`: parameter counts and ``estimate_memory``.
- :mod:`~slam_align.models.loading`: ``load_config``, ``meta_model``, ``load_model``, ``load_tokenizer``.
- :mod:`~slam_align.models.planning`: the ``slam plan`` command.
- :mod:`~slam_align.models.tiny`: tiny random models of real architectures for tests and the demo.

Submodules are imported on use, so importing this package does not import torch.
"""
