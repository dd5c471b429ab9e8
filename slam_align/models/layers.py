"""Layer sets: the ``--layers`` syntax and ``layers.json``, the file ``slam identify`` writes.

``slam identify`` writes its selection with :func:`write_layers_file`; ``slam plan`` and
``slam train`` read it through ``--layers auto:PATH`` with :func:`read_layers_file`, which
accepts the file or the directory holding it and checks its format tag, so a file that
merely looks similar is never taken for a selection.
"""

from __future__ import annotations

import re
from pathlib import Path

from slam_align.errors import SlamError

LAYERS_FILE = "layers.json"
LAYERS_FORMAT = "slam-identify/1"
LAYERS_HELP = "layers: 0-5, 0,2,4, -1 (from the top), all, or auto:DIR (the layers.json of slam identify)"


def parse_layers(spec, num_layers: int) -> list[int]:
    """``"0-5"``, ``"0,2,4"``, ``"-1"`` / ``"-6--1"`` (from the top), ``"all"`` or
    ``"auto:PATH"`` (the selection in slam identify's layers.json, or PATH/layers.json)
    -> sorted distinct 0-based layer indices. Also accepts an int or a list of ints."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        items: list = [spec]
    elif isinstance(spec, list | tuple):
        items = list(spec)
    else:
        text = str(spec).strip()
        if text == "all":
            return list(range(num_layers))
        if text == "auto" or text.startswith("auto:"):
            items = read_layers_file(text[5:].strip(), num_layers)
        else:
            items = [p.strip() for p in text.split(",") if p.strip()]
    out: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            out.add(_resolve(item, num_layers))
            continue
        m = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", str(item))
        if not m:
            raise SlamError(
                f"layers: cannot read {item!r} in {spec!r}; expected e.g. 0-5, 0,2,4, -1, all or auto:DIR"
            )
        start = _resolve(int(m.group(1)), num_layers)
        stop = start if m.group(2) is None else _resolve(int(m.group(2)), num_layers)
        if stop < start:
            raise SlamError(f"layers: range {item!r} is empty (its end comes before its start)")
        out.update(range(start, stop + 1))
    if not out:
        raise SlamError(f"layers: {spec!r} selects no layer (empty layer set)")
    return sorted(out)


def _resolve(i: int, num_layers: int) -> int:
    if not -num_layers <= i < num_layers:
        raise SlamError(f"layer {i} does not exist: model has {num_layers} layers (0-{num_layers - 1})")
    return i % num_layers


def format_layers(layers: list[int]) -> str:
    """[0, 1, 2, 5] -> "0-2,5" (the inverse of :func:`parse_layers`)."""
    parts: list[str] = []
    for i in layers:
        if parts and parts[-1].split("-")[-1] == str(i - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{i}"
        else:
            parts.append(str(i))
    return ",".join(parts)


def layers_file_path(path: str | Path) -> Path:
    """``path`` itself, or ``path/layers.json`` when ``path`` is a directory."""
    p = Path(path).expanduser()
    return p / LAYERS_FILE if p.is_dir() else p


def check_layers_spec(spec: str) -> None:
    """Fail fast (before any model is loaded) on an ``auto:PATH`` whose file is missing or invalid."""
    text = str(spec).strip()
    if text == "auto" or text.startswith("auto:"):
        read_layers_file(text[5:].strip())


def read_layers_file(path: str | Path, num_layers: int | None = None) -> list[int]:
    """The selected layers of a ``layers.json`` written by ``slam identify`` (file or directory).

    Checks the format tag and, when ``num_layers`` is given, that the selection was made on a
    model of that depth.
    """
    from slam_align.io import read_json_object

    if not str(path).strip():
        raise SlamError(
            "layers: 'auto' needs a path, e.g. auto:runs/identify (the --output of slam identify)"
        )
    p = layers_file_path(path)
    if not p.exists():
        raise SlamError(f"{p}: layers file not found (write it with slam identify --output DIR)")
    data = read_json_object(p, what="layers.json of slam identify")
    if data.get("format") != LAYERS_FORMAT:
        raise SlamError(
            f"{p}: not a layers file of slam identify (field 'format' is {data.get('format')!r}, "
            f"expected {LAYERS_FORMAT!r})"
        )
    selected = data.get("selected")
    if not isinstance(selected, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in selected
    ):
        raise SlamError(f"{p}: field 'selected' must be a list of layer indices")
    if not selected:
        raise SlamError(f"{p}: field 'selected' is empty (empty layer set)")
    n = data.get("num_layers")
    if num_layers is not None and isinstance(n, int) and n != num_layers:
        raise SlamError(f"{p}: selection was made on a model with {n} layers; this model has {num_layers}")
    return selected


def write_layers_file(path: str | Path, result: dict) -> Path:
    """Write ``result`` (``selected``, ``scores``, statistics...) as ``layers.json`` with its format tag.

    Lists of numbers stay on one line each (a layer's per-language values), for humans.
    """
    from slam_align.io import atomic_write_text

    return atomic_write_text(path, _compact_json({"format": LAYERS_FORMAT, **result}) + "\n")


def _compact_json(obj, depth: int = 0) -> str:
    from slam_align.io import dumps_json

    pad = "  " * (depth + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{dumps_json(str(k))}: {_compact_json(v, depth + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + "  " * depth + "}"
    if isinstance(obj, list) and any(isinstance(v, list | dict) for v in obj):
        items = [pad + _compact_json(v, depth + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + "  " * depth + "]"
    return dumps_json(obj, indent=None)
