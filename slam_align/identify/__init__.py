"""Layer identification: which layers handle multilingualism (``slam identify``).

- ``stats``: on-device activation counting (forward pre-hooks) and SLAM's statistics;
- ``lape``: language activation probability entropy (Tang et al. 2024);
- ``select``: top-k or contiguous selection from per-layer scores;
- ``collect``: tokenisation, one-language right-padded batches, the forward passes;
- ``plots``; ``identify``: the command (``IdentifyOptions``, ``identify(options) -> dict``,
  ``identify_cli``), which writes ``layers.json`` through :mod:`slam_align.models.layers`.

Formulas and outputs: docs/identify.md.
"""
