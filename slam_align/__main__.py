"""``python -m slam_align`` is the same CLI as ``slam`` (needed for ``torchrun -m slam_align``)."""

from slam_align.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
