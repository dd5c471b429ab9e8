"""The ``slam`` command line: a thin layer over the Python API.

Each subcommand is one row of ``COMMANDS``: its name, the options dataclass and the
library function it runs (``module:function``, imported only when that command runs, so
``slam --help`` stays fast and needs no torch). The function takes the options object
and returns an exit code (``None`` means 0). Options come from an optional YAML file
(positional ``CONFIG``) and flags; see :mod:`slam_align.config`.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import re
import sys
from dataclasses import dataclass

from slam_align import __version__
from slam_align.config import add_options, resolve_options
from slam_align.errors import SlamError


@dataclass(frozen=True)
class Command:
    name: str  # "plan" or "data build"
    options: str  # "module:DataclassName"
    run: str  # "module:function"
    help: str
    takes_config: bool = True  # positional CONFIG.yaml


COMMANDS: list[Command] = [
    Command(
        "plan",
        "slam_align.models.plan:PlanOptions",
        "slam_align.models.plan:plan_cli",
        "Show which parameters a method trains (and the memory it needs), without downloading weights.",
    ),
    Command(
        "data build",
        "slam_align.data.build:BuildOptions",
        "slam_align.data.build:build_cli",
        "Build a training mixture (question alignment + responses), deduplicated and decontaminated.",
    ),
    Command(
        "data inspect",
        "slam_align.data.inspect:InspectOptions",
        "slam_align.data.inspect:inspect_cli",
        "Show a few training examples rendered with a prompt template.",
        takes_config=False,
    ),
    Command(
        "identify",
        "slam_align.identify.identify:IdentifyOptions",
        "slam_align.identify.identify:identify_cli",
        "Find the layers that handle multilingualism (activation statistics or LAPE).",
    ),
    Command(
        "train",
        "slam_align.train.train:TrainOptions",
        "slam_align.train.train:train_cli",
        "Fine-tune with SLAM or a baseline (full, two-stage, lora, attention, random).",
    ),
    Command(
        "merge",
        "slam_align.train.merge:MergeOptions",
        "slam_align.train.merge:merge_cli",
        "Rebuild a full model from a base model and a SLAM delta checkpoint.",
        takes_config=False,
    ),
    Command(
        "eval",
        "slam_align.evaluate.eval:EvalOptions",
        "slam_align.evaluate.eval:eval_cli",
        "Evaluate a model on MGSM / MSVAMP / GSM8K in many languages.",
    ),
    Command(
        "score",
        "slam_align.evaluate.score:ScoreOptions",
        "slam_align.evaluate.score:score_cli",
        "Re-score saved predictions (JSONL with lang, prediction, answer).",
        takes_config=False,
    ),
    Command(
        "compare",
        "slam_align.evaluate.compare:CompareOptions",
        "slam_align.evaluate.compare:compare_cli",
        "Compare several run directories in one table and one plot.",
        takes_config=False,
    ),
    Command(
        "demo",
        "slam_align.synth.demo:DemoOptions",
        "slam_align.synth.demo:demo_cli",
        "Run the whole SLAM story on a synthetic multilingual world, on a CPU, with no download.",
    ),
]


def _load(ref: str):
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


def _add_command_parser(sub, cmd: Command, leaf: str):
    p = sub.add_parser(
        leaf, help=cmd.help, description=cmd.help, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if cmd.takes_config:
        p.add_argument(
            "config",
            nargs="?",
            metavar="CONFIG.yaml",
            help="YAML file of options (keys as the flags, dashes or underscores); flags override it",
        )
    try:
        add_options(p, _load(cmd.options))
    except ImportError as e:  # keep the rest of the CLI usable if one part fails to import
        p.description = f"{cmd.help}\n(unavailable: {e})"
    p.set_defaults(_command=cmd)
    return p


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slam",
        description="SLAM: selective language alignment of LLMs for multilingual reasoning.",
        epilog="Run 'slam COMMAND --help' for a command's options. Docs: README.md and docs/.",
    )
    parser.add_argument("--version", action="version", version=f"slam-align {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full Python traceback of an error (anywhere on the line; also SLAM_DEBUG=1)",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    # Only build the option parsers of the command being run (imports stay lazy for --help).
    wanted = [a for a in (argv or []) if not a.startswith("-")][:2]
    for cmd in COMMANDS:
        parts = cmd.name.split()
        if len(parts) == 1:
            if wanted[:1] == parts:
                _add_command_parser(sub, cmd, parts[0])
            else:
                p = sub.add_parser(parts[0], help=cmd.help, add_help=False)
                p.set_defaults(_command=cmd, _lazy=True)
            continue
        group, leaf = parts
        if group not in groups:
            gp = sub.add_parser(
                group,
                help=f"{group} commands: "
                + ", ".join(c.name.split()[1] for c in COMMANDS if c.name.startswith(group + " ")),
            )
            groups[group] = gp.add_subparsers(title=f"{group} commands", metavar="COMMAND")
        _add_command_parser(groups[group], cmd, leaf)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # --debug works anywhere on the line (slam train ... --debug), not only before the command.
    debug = "--debug" in argv or os.environ.get("SLAM_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    cmd: Command | None = getattr(args, "_command", None)
    if cmd is None:
        parser.print_help()
        return 0
    flags = {
        k: v
        for k, v in vars(args).items()
        if not k.startswith("_") and k not in ("config", "verbose", "debug")
    }
    options = None
    try:
        options = resolve_options(_load(cmd.options), getattr(args, "config", None), flags)
        code = _load(cmd.run)(options)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # the one error boundary: one line, unless --debug asks for the traceback
        if debug:
            raise
        print(f"error: {error_line(e, getattr(options, 'output', None))}", file=sys.stderr)
        return e.exit_code if isinstance(e, SlamError) else 1
    return int(code or 0)


# Libraries written in Rust (safetensors, tokenizers) report the OS error in their message.
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")
# What the user can do about the OS errors that a full or read-only disk causes.
_OS_ADVICE = {
    errno.ENOSPC: "the disk is full; free space or choose another --output",
    errno.EFBIG: "a file-size limit was hit (ulimit -f); raise it or choose another --output",
    errno.EROFS: "the file system is read-only; choose another --output",
    errno.EACCES: "permission denied; choose another --output or fix the permissions",
    errno.EDQUOT: "the disk quota is exceeded; free space or choose another --output",
}


def error_line(e: BaseException, output: str | None = None) -> str:
    """One line for an error: ours as it is; the operating system's with the file it concerns
    (``output``, the command's --output, names the place when the error itself names none)."""
    if isinstance(e, SlamError):
        return str(e)
    code = e.errno if isinstance(e, OSError) and e.strerror else None
    rust = _RUST_OS_ERROR.search(str(e))
    if rust and code is None:
        code = int(rust.group(1))
    if code is not None:
        filename = getattr(e, "filename", None) or (f"writing {output}" if output else None)
        where = f"{filename}: " if filename else ""
        advice = _OS_ADVICE.get(code)
        return f"{where}{os.strerror(code)}" + (f" ({advice})" if advice else "")
    if isinstance(e, UnicodeDecodeError):
        return f"input is not UTF-8 text ({e.reason} at byte {e.start})"
    if isinstance(e, MemoryError):
        return "out of memory"
    text = " ".join(str(e).split())[:300] or type(e).__name__
    return (
        f"{type(e).__name__}: {text} (unexpected: run with --debug or SLAM_DEBUG=1 for the traceback "
        "and report it)"
    )


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
