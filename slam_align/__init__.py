"""slam-align: Selective Language Alignment (SLAM, COLING 2025) for multilingual reasoning.

The package reads top to bottom in the order data flows through it:
``models`` (which parameters to train) -> ``data`` (benchmarks, mixtures, prompts)
-> ``identify`` (which layers handle language) -> ``train`` (recipes)
-> ``evaluate`` (generation, answer extraction, scores) -> ``synth`` (the demo world).
"""

__version__ = "0.1.0"

from slam_align.errors import SlamError  # noqa: E402

__all__ = ["SlamError", "__version__"]
