"""The one matplotlib set-up: a headless backend and atomic PNG files.

Every plot in the package (identify, train, evaluate, demo) goes through these two
functions, so no command needs a display and no reader sees a half-written PNG.
"""

from __future__ import annotations

from pathlib import Path

from slam_align.io import atomic_path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return path
