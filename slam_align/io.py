"""Files and run directories: atomic writes, no silent overwrite, provenance.

Every run directory holds ``config.yaml``, ``metrics.json``, ``timing.json`` and a
``README.md`` summary; the helpers here are the one place those conventions live.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from slam_align.errors import SlamError


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    A crash (or an exception) leaves ``path`` untouched: readers never see a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


def _json_default(obj: Any):
    # numpy / torch scalars and paths appear in metrics; make them plain JSON.
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps_json(obj: Any, indent: int | None = 2) -> str:
    return json.dumps(obj, indent=indent, ensure_ascii=False, default=_json_default)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, dumps_json(obj) + "\n")


def atomic_write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> Path:
    return atomic_write_text(path, "".join(dumps_json(r, indent=None) + "\n" for r in rows))


def atomic_write_yaml(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    path = Path(path)
    if not path.is_file():
        raise SlamError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SlamError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None


def read_jsonl(path: str | os.PathLike, *, line_key: str | None = None, what: str = "file") -> list[dict]:
    """Read JSON Lines; a bad line is reported by file and line number.

    ``line_key`` (e.g. ``"_line"``) stores each row's line number in the row, so that later
    checks of a field can name the line too.
    """
    path = Path(path)
    if not path.is_file():
        raise SlamError(f"{path}: {what} not found")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise SlamError(f"{path}: line {lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise SlamError(f"{path}: line {lineno}: expected a JSON object, got {type(row).__name__}")
            if line_key:
                row[line_key] = lineno
            rows.append(row)
    return rows


def prepare_output_dir(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Create ``path`` for a new run.

    An existing non-empty directory is an error unless ``resume`` (continue it) or
    ``overwrite`` (the user asked for it explicitly) is set: results are never silently lost.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SlamError(f"{path}: output path exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not (resume or overwrite):
        raise SlamError(
            f"{path}: output directory exists and is not empty; pass --resume to continue it "
            "or --overwrite to replace its results"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def environment_versions() -> dict[str, str]:
    """Versions of the things that change results, recorded in every run directory."""
    import importlib.metadata as md

    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in (
        "slam-align",
        "torch",
        "transformers",
        "accelerate",
        "peft",
        "datasets",
        "tokenizers",
        "deepspeed",
        "vllm",
    ):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    try:
        import torch

        if torch.cuda.is_available():
            versions["cuda"] = str(torch.version.cuda)
            versions["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # torch missing or broken CUDA: versions are informative only
        pass
    return versions


def write_run_readme(path: str | os.PathLike, title: str, sections: dict[str, str]) -> Path:
    """A short Markdown summary of a run: title then one section per key."""
    parts = [f"# {title}", ""]
    for heading, body in sections.items():
        parts += [f"## {heading}", "", body.rstrip(), ""]
    return atomic_write_text(Path(path), "\n".join(parts))
