"""Files and run directories: atomic writes, reading with clear errors, the run-directory contract.

Every command that writes results writes them into a *run directory* through
:func:`open_run_dir`, the one place these rules live:

- the directory holds ``run.json`` (which command wrote it, when, its status),
  ``config.yaml`` (the options: reusable as ``slam COMMAND config.yaml``),
  ``environment.json`` (package versions), ``metrics.json``, ``timing.json`` and a
  ``README.md`` summary;
- an existing directory is used only when it is empty, or holds an earlier run of the
  *same* command and the user asked to continue it (``--resume``) or to replace it
  (``--overwrite``). ``--overwrite`` removes only what that command writes and refuses
  when the directory holds anything else; a directory written by another command, or by
  no command, is never touched;
- a run that fails before its work begins leaves nothing behind, so the corrected
  command runs as if the first had never happened; a run that fails later stays
  resumable (``run.json`` says ``failed``), or, for a command that cannot resume, is
  replaced by the next run of that command without ``--overwrite``;
- one writer at a time (an OS lock, released by the kernel if the process dies);
- every file is written atomically (a temporary file renamed into place) with the
  user's umask.
"""

from __future__ import annotations

import fnmatch
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from slam_align.errors import SlamError

RUN_RECORD = "run.json"
LOCK_FILE = ".slam.lock"
ENVIRONMENT = "environment.json"
# Files every run directory may hold, whatever the command.
COMMON_OUTPUTS = (
    RUN_RECORD,
    LOCK_FILE,
    ENVIRONMENT,
    "config.yaml",
    "metrics.json",
    "timing.json",
    "README.md",
    ".*.tmp",  # atomic_path's temporary files, left only by a writer killed mid-write
)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()  # read once: os.umask can only be read by setting it


# ---------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success.

    A crash (or an exception) leaves ``path`` untouched: readers never see a half-written
    file. The file gets the user's umask (mkstemp alone would make it private).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:  # name the file the user asked for, not our temporary one
        raise OSError(e.errno, e.strerror, str(path)) from None
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.isfile(tmp):
            os.chmod(tmp, 0o666 & ~UMASK)
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


def write_dir_atomically(out: Path, files: dict[str, Callable[[Path], Any]], replace: bool = False) -> None:
    """Write every file into a temporary sibling directory, then rename it to ``out`` at once.

    ``files`` maps a name to a function writing that file at the path it is given. With
    ``replace`` an existing ``out`` is swapped out only after the new one is complete.
    """
    _remove_stale_temps(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # The pid in the name lets a later run tell a killed writer's leftovers from a live one's.
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".tmp", dir=out.parent))
    except OSError as e:  # name the directory the user asked for, not our temporary one
        raise OSError(e.errno, e.strerror, str(out)) from None
    try:
        for name, write in files.items():
            write(tmp / name)
        tmp.chmod(0o777 & ~UMASK)
        if out.exists():
            if not replace:  # checked again: someone may have created it meanwhile
                raise SlamError(f"{out}: output exists; pass --overwrite to replace it")
            trash = Path(
                tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", suffix=".old", dir=out.parent)
            )
            os.replace(out, trash / out.name)
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _remove_stale_temps(out: Path) -> None:
    """Remove the temporary siblings of ``out`` that a killed writer left (its pid is gone)."""
    if not out.parent.is_dir():
        return
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(\d+)\.[^.]+\.(tmp|old)")
    for p in out.parent.iterdir():
        m = pattern.fullmatch(p.name)
        if m and p.is_dir() and not p.is_symlink() and not _pid_alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# Reading, with one-line errors that name the file and line
# ---------------------------------------------------------------------------------------


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``; a missing file or other bytes are one-line errors naming it."""
    if not path.is_file():
        raise SlamError(f"{path}: {what} not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SlamError(f"{path}: not UTF-8 text (byte {e.start}); expected a UTF-8 {what}") from None


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    path = Path(path)
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SlamError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None


def read_json_object(path: str | os.PathLike, what: str = "JSON file") -> dict:
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise SlamError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_yaml(path: str | os.PathLike, what: str = "YAML file") -> Any:
    path = Path(path)
    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        raise SlamError(f"{path}:{where} not valid YAML ({getattr(e, 'problem', e)})") from None


def read_jsonl(
    path: str | os.PathLike,
    *,
    line_key: str | None = None,
    what: str = "file",
    tolerate_torn_tail: bool = False,
) -> list[dict]:
    """Read JSON Lines; a bad line is reported by file and line number.

    ``line_key`` (e.g. ``"_line"``) stores each row's line number in the row, so that later
    checks of a field can name the line too. ``tolerate_torn_tail`` drops an unparsable
    *last* line (a writer killed mid-line) instead of failing.
    """
    path = Path(path)
    lines = read_text(path, what).splitlines()
    rows = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if tolerate_torn_tail and lineno == len(lines):
                continue
            raise SlamError(f"{path}: line {lineno}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise SlamError(f"{path}: line {lineno}: expected a JSON object, got {type(row).__name__}")
        if line_key:
            row[line_key] = lineno
        rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# Environment
# ---------------------------------------------------------------------------------------


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
    if "torch" in sys.modules:  # only where torch is in use anyway: importing it costs seconds
        torch = sys.modules["torch"]
        try:
            if torch.cuda.is_available():
                versions["cuda"] = str(torch.version.cuda)
                versions["gpu"] = torch.cuda.get_device_name(0)
        except Exception:  # a broken CUDA set-up: versions are informative only
            pass
    return versions


def write_run_readme(path: str | os.PathLike, title: str, sections: dict[str, str]) -> Path:
    """A short Markdown summary of a run: title then one section per key."""
    parts = [f"# {title}", ""]
    for heading, body in sections.items():
        parts += [f"## {heading}", "", body.rstrip(), ""]
    return atomic_write_text(Path(path), "\n".join(parts))


# ---------------------------------------------------------------------------------------
# Run directories
# ---------------------------------------------------------------------------------------


def read_run_record(path: str | os.PathLike) -> dict | None:
    """``run.json`` of a run directory, or None if there is none (or it is unreadable)."""
    try:
        record = json.loads((Path(path) / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("command"), str) else None


def run_record(command: str, status: str, previous: dict | None = None, **fields) -> dict:
    """The content of ``run.json``: which command wrote the directory, its status, when."""
    from slam_align import __version__

    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    record = {
        **(previous or {}),
        "command": command,
        "status": status,
        "slam_align_version": __version__,
        "started": (previous or {}).get("started") or now,
        "updated": now,
        **fields,
    }
    if status != "failed":
        record.pop("error", None)
    return record


def _owned(name: str, outputs: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pat) for pat in (*COMMON_OUTPUTS, *outputs))


def check_run_dir(
    path: str | os.PathLike,
    command: str,
    *,
    overwrite: bool = False,
    resume: bool = False,
    outputs: Iterable[str] = (),
    resumable: bool = False,
) -> str:
    """Decide, touching nothing, whether ``command`` may write to ``path``.

    Returns ``"new"`` (absent or empty), ``"resume"`` (an earlier run of the same command,
    to continue) or ``"replace"`` (the same, to replace: ``overwrite``). ``outputs`` are the
    glob patterns of what the command writes besides the common files; ``--overwrite``
    refuses a directory holding anything else. Raises a one-line error otherwise.
    """
    path = Path(path)
    check_directory_path(path, "output path")
    if not path.exists():
        return "new"
    entries = [p.name for p in path.iterdir() if p.name != LOCK_FILE]
    if not entries:
        return "new"
    record = read_run_record(path)
    hint = "choose another --output"
    if record is None:
        raise SlamError(
            f"{path}: directory is not empty and holds no slam run; {hint} (--overwrite only replaces "
            f"an earlier 'slam {command}' run)"
        )
    if record["command"] != command:
        raise SlamError(f"{path}: holds a 'slam {record['command']}' run, not a 'slam {command}' run; {hint}")
    if resume and resumable:
        return "resume"
    # A failed (or killed) run of a command that cannot continue one is worth nothing: the
    # corrected command replaces it without --overwrite (the lock still stops a live writer).
    unfinished = not resumable and record.get("status") in ("failed", "running")
    if overwrite or unfinished:
        foreign = sorted(name for name in entries if not _owned(name, outputs))
        if foreign:
            flag = "--overwrite" if overwrite else f"replacing the failed slam {command} run"
            raise SlamError(
                f"{path}: {flag} would delete '{foreign[0]}', which slam {command} did not write; "
                f"move it away or {hint}"
            )
        return "replace"
    options = (
        "--resume to continue it or --overwrite to replace it" if resumable else "--overwrite to replace it"
    )
    raise SlamError(f"{path}: holds an earlier 'slam {command}' run; pass {options}, or {hint}")


def check_directory_path(path: str | os.PathLike, what: str) -> None:
    """Refuse, now, a directory path that is a file or lies below one (``--output FILE/sub``),
    instead of failing with an OS error once work has been done."""
    path = Path(path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise SlamError(f"{path}: {what} exists and is not a directory")
        return
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise SlamError(f"{path}: cannot create it: {parent} is a file, not a directory")
            return


class RunDir:
    """A run directory opened by :func:`open_run_dir` (use it as a context manager)."""

    def __init__(self, path: Path, command: str, state: str, outputs: tuple[str, ...], fields: dict):
        self.path = path
        self.command = command
        self.state = state  # new / resume / replace
        self.outputs = outputs
        self.fields = fields  # extra run.json fields (e.g. slam eval's identity)
        self.previous = read_run_record(path) if state == "resume" else None
        self._created_dir = False
        self._work_started = state == "resume"
        self._lock = None
        self._owned_by_us = False  # set once the lock is held: only then may close() clean up
        self._started = time.time()

    @property
    def resumed(self) -> bool:
        return self.state == "resume"

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # -- lifecycle ---------------------------------------------------------------------

    def _open(self, config: dict | None) -> None:
        if not self.path.exists():
            self.path.mkdir(parents=True)
            self._created_dir = True
        self._acquire_lock()
        if self.state == "replace":
            removed = self._remove_outputs()
            if removed:
                import logging

                logging.getLogger(__name__).info(
                    "replacing: removed %d entries of the earlier slam %s run in %s: %s",
                    len(removed),
                    self.command,
                    self.path,
                    ", ".join(removed),
                )
        self._record("running")
        if config is not None:
            atomic_write_yaml(self.path / "config.yaml", config)
        atomic_write_json(self.path / ENVIRONMENT, environment_versions())

    def begin_work(self) -> None:
        """From now on a failure leaves a resumable run behind instead of removing it."""
        self._work_started = True

    def finish(self, **fields) -> None:
        self._record("complete", **fields)

    def close(self, error: BaseException | None = None) -> None:
        try:
            if error is None or not self._owned_by_us:
                pass  # another writer holds the directory: its files are not ours to touch
            elif not self._work_started:
                self._undo()
            else:
                self._record("failed", error=" ".join(str(error).split())[:300] or type(error).__name__)
        except OSError:  # e.g. the disk is still full: the original error is the one to report
            pass
        finally:
            self._release_lock()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)

    # -- helpers -----------------------------------------------------------------------

    def _record(self, status: str, **fields) -> None:
        previous = {**(self.previous or {}), **(read_run_record(self.path) or {})}
        record = run_record(self.command, status, previous, **self.fields, **fields)
        atomic_write_json(self.path / RUN_RECORD, record)

    def _remove_outputs(self) -> list[str]:
        removed = []
        for p in sorted(self.path.iterdir()):
            if p.name == LOCK_FILE or not _owned(p.name, self.outputs):
                continue
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            removed.append(p.name)
        return removed

    def _undo(self) -> None:
        """Nothing was done yet: leave the place as it was before the command."""
        if self._created_dir:
            self._release_lock()
            shutil.rmtree(self.path, ignore_errors=True)
            return
        # The directory was empty (or held this command's earlier outputs, which the user
        # asked to replace): what is there now of the command's own files is ours to remove.
        self._remove_outputs()

    def _acquire_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            self._owned_by_us = True
            return
        handle = open(self.path / LOCK_FILE, "w")  # noqa: SIM115 - held for the run's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise SlamError(
                f"{self.path}: another slam {self.command} is writing to this directory; wait for it "
                "or choose another --output"
            ) from None
        self._lock = handle
        self._owned_by_us = True

    def _release_lock(self) -> None:
        if self._lock is None:
            return
        try:
            (self.path / LOCK_FILE).unlink()
        except FileNotFoundError:
            pass
        self._lock.close()  # closing releases the flock
        self._lock = None


def open_run_dir(
    path: str | os.PathLike,
    command: str,
    *,
    config: dict | None = None,
    overwrite: bool = False,
    resume: bool = False,
    outputs: Iterable[str] = (),
    resumable: bool = False,
    record: dict | None = None,
) -> RunDir:
    """Check (see :func:`check_run_dir`), then create or reopen ``path`` for ``command``.

    Writes ``run.json`` (status ``running``, plus the ``record`` fields), ``config.yaml``
    (``config``) and ``environment.json``, and holds the directory's lock until
    :meth:`RunDir.close`.
    Call it only after every input has been validated: that is what keeps a bad
    command from touching the disk.
    """
    path = Path(path).expanduser()
    outputs = tuple(outputs)
    state = check_run_dir(
        path, command, overwrite=overwrite, resume=resume, outputs=outputs, resumable=resumable
    )
    run = RunDir(path, command, state, outputs, dict(record or {}))
    try:
        run._open(config)
    except BaseException as e:
        run.close(e)
        raise
    return run
