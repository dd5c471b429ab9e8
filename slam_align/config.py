"""Options as dataclasses: one definition serves the Python API, YAML configs and CLI flags.

Every command's options are a dataclass whose fields carry ``help`` metadata. The CLI
builds its flags from the fields (``--max-steps`` and ``--max_steps`` both work), a YAML
file given as the positional ``CONFIG`` sets values, and flags override the file.
Precedence: dataclass default < YAML file < command-line flag.

Field metadata understood here:
  help      text for ``--help``
  choices   allowed values (for a list: of each item; checked for YAML values too)
  aliases   extra flag names, e.g. ``["-o"]``
  at_least / at_most / above
            the numeric range (inclusive / inclusive / exclusive). Every float must also
            be finite. Checked when options are built, from flags and YAML alike, before
            any command touches a file.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from slam_align.errors import SlamError

T = TypeVar("T")


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str = "",
    choices=None,
    aliases=None,
    positional=False,
    at_least: float | None = None,
    at_most: float | None = None,
    above: float | None = None,
    **kw,
):
    """``dataclasses.field`` with the metadata the CLI needs (``positional``: also accepted
    as a positional argument, e.g. ``slam data inspect FILE``; ``at_least`` / ``at_most`` /
    ``above``: the allowed numeric range)."""
    meta = {
        "help": help,
        "choices": choices,
        "aliases": aliases or [],
        "positional": positional,
        "range": (at_least, at_most, above),
    }
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


def _base_type(tp: Any) -> tuple[Any, bool]:
    """(underlying type, is_optional) for annotations like ``int | None``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML or string value to the field's type, or raise a one-line error."""
    base, optional = _base_type(tp)
    if value is None:
        if optional:
            return None
        raise SlamError(f"{where}: a value is required")
    if isinstance(value, str) and optional and value.lower() in ("none", "null"):
        return None
    origin = typing.get_origin(base)
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            if isinstance(value, list | dict):
                raise ValueError
            return str(value)
        if origin is list or base is list:
            (item_tp,) = typing.get_args(base) or (str,)
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list | tuple):
                value = [value]
            return [_coerce(v, item_tp, where) for v in value]
        if origin is dict or base is dict:
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
    except (TypeError, ValueError):
        name = getattr(base, "__name__", str(base))
        raise SlamError(f"{where}: expected {name}, got {value!r}") from None
    return value


@dataclasses.dataclass
class Options:
    """Base of every command's options: values are checked however the object is made
    (flags, YAML, or the Python API: ``TrainOptions(learning_rate=float("inf"))`` fails too)."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            check_value(getattr(self, f.name), f, f"options: option '{f.name.replace('_', '-')}'")


def _type_hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def range_text(field: dataclasses.Field) -> str:
    """The declared range in words: ">= 1", "> 0", "in [0, 1]" ("" if none)."""
    at_least, at_most, above = field.metadata.get("range", (None, None, None))
    low = f">= {at_least:g}" if at_least is not None else f"> {above:g}" if above is not None else ""
    if at_most is not None:
        bracket = "[" if at_least is not None else "("
        start = at_least if at_least is not None else above
        return f"<= {at_most:g}" if start is None else f"in {bracket}{start:g}, {at_most:g}]"
    return low


def check_value(value: Any, field: dataclasses.Field, where: str) -> None:
    """Numbers must be finite and within the field's declared range; choices must match."""
    if value is None:
        return
    items = value if isinstance(value, list) else [value]
    choices = field.metadata.get("choices")
    for item in items:
        if choices and item not in choices:
            raise SlamError(f"{where} is {item!r}; expected one of: {', '.join(map(str, choices))}")
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        if isinstance(item, float) and not math.isfinite(item):
            raise SlamError(f"{where} is {item!r}; expected a finite number")
        at_least, at_most, above = field.metadata.get("range", (None, None, None))
        if (
            (at_least is not None and item < at_least)
            or (at_most is not None and item > at_most)
            or (above is not None and item <= above)
        ):
            raise SlamError(f"{where} is {item!r}; expected a number {range_text(field)}")


def add_options(parser: argparse.ArgumentParser, cls) -> None:
    """Add one flag per dataclass field. Defaults are suppressed so that we know what was given."""
    hints = _type_hints(cls)
    # Required options first (--model, --output...), then the rest in definition order
    # (options shared through a base class, like the plan fields, come after).
    fields = sorted(dataclasses.fields(cls), key=lambda f: not _required(f))
    for f in fields:
        if f.metadata.get("cli") is False:
            continue
        tp, _ = _base_type(hints[f.name])
        dashed, under = "--" + f.name.replace("_", "-"), "--" + f.name
        names = [dashed] + ([under] if under != dashed else []) + list(f.metadata.get("aliases", []))
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        help_text = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        if choices:
            help_text += f" (one of: {', '.join(map(str, choices))})"
        if range_text(f):
            help_text += f" ({range_text(f)})"
        if _required(f):
            help_text += " [required]"
        elif default not in (None, "", [], False) and tp is not bool:
            shown = ",".join(map(str, default)) if isinstance(default, list) else default
            help_text += f" [default: {shown}]"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if tp is bool:
            parser.add_argument(*names, action=argparse.BooleanOptionalAction, **kwargs)
        else:
            kwargs["metavar"] = f.name.upper()
            parser.add_argument(*names, **kwargs)
            if f.metadata.get("positional"):
                # Same dest as the flag: either spelling fills the field.
                parser.add_argument(
                    f.name,
                    # a list field takes any number of positionals (``slam compare RUN_DIR...``)
                    nargs="*" if (tp is list or typing.get_origin(tp) is list) else "?",
                    metavar=f.name.upper(),
                    help=f"same as {dashed}",
                    default=argparse.SUPPRESS,
                )


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def load_yaml_config(path: str | Path) -> dict[str, Any]:
    from slam_align.io import read_yaml

    data = read_yaml(path, what="config file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SlamError(f"{path}: expected a mapping of option: value, got {type(data).__name__}")
    return data


def build_options(cls: type[T], values: dict[str, Any], source: str = "options") -> T:
    """Make ``cls`` from a dict whose keys may use dashes or underscores; check every value."""
    hints = _type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            known = ", ".join(sorted(n.replace("_", "-") for n in fields))
            raise SlamError(f"{source}: unknown option '{key}' (known: {known})")
        where = f"{source}: option '{name.replace('_', '-')}'"
        v = _coerce(value, hints[name], where)
        check_value(v, fields[name], where)
        kwargs[name] = v
    missing = [n for n, f in fields.items() if n not in kwargs and _required(f)]
    if missing:
        raise SlamError(f"{source}: missing required option --{missing[0].replace('_', '-')}")
    return cls(**kwargs)


def resolve_options(cls: type[T], config_path: str | None, flags: dict[str, Any]) -> T:
    """defaults < YAML file < flags."""
    values: dict[str, Any] = {}
    if config_path:
        values.update({str(k).replace("-", "_"): v for k, v in load_yaml_config(config_path).items()})
    values.update(flags)
    return build_options(cls, values, source=str(config_path) if config_path and not flags else "options")


def options_to_dict(obj) -> dict[str, Any]:
    """Plain dict for ``config.yaml`` (round-trips through ``build_options``)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(obj).items()}
