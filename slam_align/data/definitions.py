"""Benchmark definitions: a benchmark is a data file, not code.

Each ``slam_align/benchmarks/*.yaml`` (package data) names a benchmark's source (local
file layout and Hugging Face hub id/config/split per split), its languages, the fields of
a row, the prompt a question is shown with, and its answer type (``number``: MGSM, MSVAMP,
GSM8K; ``choice``: X-CSQA). :mod:`slam_align.data.benchmarks` loads any definition with
one loader; ``slam eval --benchmark PATH.yaml`` takes a definition file of one's own. The
schema is documented in docs/data.md ("Benchmark definitions"); a definition is checked
in full when it is read, and every error names the file and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slam_align.data.languages import LANGUAGE_NAMES, PAPER_LANGS, language_name
from slam_align.errors import SlamError

ANSWER_TYPES = ("number", "choice")  # scored by slam_align.evaluate.answers (its ANSWER_TYPES)
FORMATS = ("tsv", "jsonl")  # tsv: MGSM's question<TAB>answer lines; jsonl: one object per line
PARALLEL = ("index", "id")
BUILTIN_DIR = Path(__file__).resolve().parents[1] / "benchmarks"
_PLACEHOLDERS = {"lang", "code", "language"}
_NAME = re.compile(r"[a-z][a-z0-9_-]*")


@dataclass(frozen=True)
class LocalFiles:
    folders: tuple[str, ...]  # tried under --data-dir: DIR itself, then DIR/<folder> for each
    file: str  # "mgsm_{lang}.tsv", "{code}/dev.jsonl", "test_{language}.json"
    format: str  # one of FORMATS

    @property
    def marker(self) -> str:
        """The glob that says a folder holds this benchmark ("mgsm_*.tsv", "*/dev.jsonl")."""
        return re.sub(r"\{[a-z]+\}", "*", self.file)


@dataclass(frozen=True)
class HubSource:
    path: str  # hub id
    name: str | None  # config name pattern ("{lang}", "X-CSQA-{code}", "main")
    split: str
    file: str | None = None  # the repository's own file, when `datasets` cannot run the repo's script


@dataclass(frozen=True)
class Split:
    name: str
    local: LocalFiles | None
    hub: HubSource | None
    labelled: bool = True  # False: the answers are hidden (X-CSQA test); for decontamination only


@dataclass(frozen=True)
class ChoicePrompt:
    """How a multiple-choice question is shown, and the answer training teaches."""

    query: str = "{question}\nAnswer Choices: {choices}"
    choice: str = "({label}) {text}"
    separator: str = " "
    answer: str = "The answer is ({label})."

    def render(self, question: str, choices: tuple[tuple[str, str], ...]) -> str:
        listed = self.separator.join(self.choice.format(label=lab, text=text) for lab, text in choices)
        return self.query.format(question=question, choices=listed)

    def target(self, label: str) -> str:
        return self.answer.format(label=label)


@dataclass(frozen=True)
class Definition:
    name: str
    description: str
    answer_type: str
    languages: tuple[str, ...]
    default_langs: tuple[str, ...]
    splits: dict[str, Split]
    eval_split: str
    fields: dict[str, Any]
    parallel: str = "index"
    codes: dict[str, str] = field(default_factory=dict)
    prompt: ChoicePrompt | None = None
    protocols: dict[str, dict[str, int]] = field(default_factory=dict)
    order: int = 100
    path: str = ""  # the file it was read from

    def code(self, lang: str) -> str:
        """The data's own code for ``lang`` (X-CSQA's Japanese is ``jap``)."""
        return self.codes.get(lang, lang)

    def fill(self, pattern: str, lang: str) -> str:
        return pattern.format(lang=lang, code=self.code(lang), language=LANGUAGE_NAMES.get(lang, lang))

    def budget(self, protocol: str) -> int | None:
        """This benchmark's own generation budget under ``protocol`` (None: the protocol's)."""
        return self.protocols.get(protocol, {}).get("max_new_tokens")


# ---------------------------------------------------------------------------------------
# Reading and checking a definition file
# ---------------------------------------------------------------------------------------

_KEYS = {
    "name", "order", "description", "answer_type", "languages", "default_langs", "codes", "parallel",
    "splits", "eval_split", "fields", "prompt", "protocols",
}  # fmt: skip
_FIELD_KEYS = {
    "number": {"question", "answer", "answer_after", "question_en", "id"},
    "choice": {"question", "choices", "answer", "question_en", "id"},
}


class _Checker:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, message: str):
        raise SlamError(f"{self.path}: {where}: {message}")

    def mapping(self, value: Any, where: str, keys: set[str] | None = None, required=()) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, got {type(value).__name__}")
        if keys is not None:
            unknown = sorted(set(value) - keys)
            if unknown:
                self.fail(where, f"unknown key '{unknown[0]}'; known keys: {', '.join(sorted(keys))}")
        for key in required:
            if value.get(key) in (None, "", [], {}):
                self.fail(where, f"missing field '{key}'")
        return value

    def text(self, value: Any, where: str, placeholders: set[str] | None = None) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"expected a non-empty string, got {value!r}")
        if placeholders is not None:
            used = set(re.findall(r"\{([^{}]*)\}", value))
            bad = sorted(used - placeholders)
            if bad:
                self.fail(where, f"unknown placeholder '{{{bad[0]}}}'; expected {_braced(placeholders)}")
        return value

    def field_path(self, value: Any, where: str) -> str | tuple[str, ...]:
        """A row field (dotted for nested: 'question.stem') or a list of alternatives."""
        if isinstance(value, list):
            if not value:
                self.fail(where, "expected a field name or a list of them, got []")
            return tuple(self.text(v, where) for v in value)
        return self.text(value, where)

    def langs(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            self.fail(where, f"expected a list of language codes, got {value!r}")
        for code in value:
            try:
                language_name(str(code))
            except SlamError as e:
                self.fail(where, str(e))
        if len(set(value)) != len(value):
            self.fail(where, "a language is listed twice")
        return tuple(str(c) for c in value)


def _braced(names) -> str:
    return ", ".join(f"{{{n}}}" for n in sorted(names))


def parse_definition(raw: Any, path: str | Path) -> Definition:
    """A checked :class:`Definition` from the parsed YAML ``raw`` of ``path``."""
    path = Path(path)
    c = _Checker(path)
    raw = c.mapping(
        raw, "definition", _KEYS, required=("name", "answer_type", "languages", "splits", "fields")
    )
    name = c.text(raw["name"], "field 'name'")
    if not _NAME.fullmatch(name) or name.startswith("jsonl"):
        c.fail(
            "field 'name'",
            f"'{name}' must be lower-case letters, digits, '-' or '_' (and not start with jsonl)",
        )
    answer_type = raw["answer_type"]
    if answer_type not in ANSWER_TYPES:
        c.fail("field 'answer_type'", f"is {answer_type!r}; expected one of: {', '.join(ANSWER_TYPES)}")
    languages = c.langs(raw["languages"], "field 'languages'")
    default = raw.get("default_langs", "paper")
    if default == "paper":
        default_langs = tuple(lang for lang in PAPER_LANGS if lang in languages) or languages
    elif default == "all":
        default_langs = languages
    else:
        default_langs = c.langs(default, "field 'default_langs'")
        if set(default_langs) - set(languages):
            c.fail("field 'default_langs'", "lists a language that is not in 'languages'")
    codes = c.mapping(raw.get("codes") or {}, "field 'codes'")
    for lang, code in codes.items():
        if lang not in languages:
            c.fail("field 'codes'", f"'{lang}' is not one of the benchmark's languages")
        c.text(code, f"field 'codes.{lang}'")
    parallel = raw.get("parallel", "index")
    if parallel not in PARALLEL:
        c.fail("field 'parallel'", f"is {parallel!r}; expected one of: {', '.join(PARALLEL)}")

    splits = {}
    for split_name, spec in c.mapping(raw["splits"], "field 'splits'").items():
        splits[str(split_name)] = _split(c, str(split_name), spec)
    eval_split = raw.get("eval_split", next(iter(splits)))
    if eval_split not in splits:
        c.fail("field 'eval_split'", f"'{eval_split}' is not one of the splits ({', '.join(splits)})")
    if not splits[eval_split].labelled:
        c.fail("field 'eval_split'", f"split '{eval_split}' has no answers (labelled: false)")

    fields = c.mapping(
        raw["fields"], "field 'fields'", _FIELD_KEYS[answer_type], required=("question", "answer")
    )
    fields = {k: c.field_path(v, f"field 'fields.{k}'") for k, v in fields.items()}
    if answer_type == "choice" and "choices" not in fields:
        c.fail("field 'fields'", "missing field 'choices' (a choice benchmark lists its choices)")
    if parallel == "id" and "id" not in fields:
        c.fail("field 'fields'", "missing field 'id' (parallel: id aligns languages on it)")

    prompt = None
    if answer_type == "choice":
        spec = c.mapping(
            raw.get("prompt") or {}, "field 'prompt'", {"query", "choice", "separator", "answer"}
        )
        defaults = ChoicePrompt()
        prompt = ChoicePrompt(
            query=c.text(spec.get("query", defaults.query), "field 'prompt.query'", {"question", "choices"}),
            choice=c.text(spec.get("choice", defaults.choice), "field 'prompt.choice'", {"label", "text"}),
            separator=str(spec.get("separator", defaults.separator)),
            answer=c.text(spec.get("answer", defaults.answer), "field 'prompt.answer'", {"label"}),
        )
    elif raw.get("prompt") is not None:
        c.fail(
            "field 'prompt'", "only choice benchmarks have one (a number benchmark shows its question as is)"
        )

    protocols = {}
    for proto, spec in c.mapping(raw.get("protocols") or {}, "field 'protocols'").items():
        spec = c.mapping(spec, f"field 'protocols.{proto}'", {"max_new_tokens"}, required=("max_new_tokens",))
        n = spec["max_new_tokens"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            c.fail(f"field 'protocols.{proto}.max_new_tokens'", f"must be a positive integer, got {n!r}")
        protocols[str(proto)] = {"max_new_tokens": n}
    order = raw.get("order", 100)
    if isinstance(order, bool) or not isinstance(order, int):
        c.fail("field 'order'", f"must be an integer, got {order!r}")
    return Definition(
        name=name,
        description=str(raw.get("description") or name),
        answer_type=answer_type,
        languages=languages,
        default_langs=default_langs,
        splits=splits,
        eval_split=eval_split,
        fields=fields,
        parallel=parallel,
        codes={str(k): str(v) for k, v in codes.items()},
        prompt=prompt,
        protocols=protocols,
        order=order,
        path=str(path),
    )


def _split(c: _Checker, name: str, spec: Any) -> Split:
    key = f"splits.{name}"
    where = f"field '{key}'"
    spec = c.mapping(spec, where, {"local", "hub", "labelled"})
    if not spec.get("local") and not spec.get("hub"):
        c.fail(where, "give 'local' (file layout) or 'hub' (hub id), or both")
    local = hub = None
    if spec.get("local"):
        lk = f"{key}.local"
        lw = f"field '{lk}'"
        loc = c.mapping(spec["local"], lw, {"folders", "file", "format"}, required=("file", "format"))
        if loc["format"] not in FORMATS:
            c.fail(f"field '{lk}.format'", f"is {loc['format']!r}; expected one of: {', '.join(FORMATS)}")
        folders = loc.get("folders") or []
        if not isinstance(folders, list):
            c.fail(f"field '{lk}.folders'", f"expected a list of folder names, got {folders!r}")
        local = LocalFiles(
            tuple(c.text(f, f"field '{lk}.folders'") for f in folders),
            c.text(loc["file"], f"field '{lk}.file'", _PLACEHOLDERS),
            loc["format"],
        )
    if spec.get("hub"):
        hk = f"{key}.hub"
        hw = f"field '{hk}'"
        h = c.mapping(spec["hub"], hw, {"path", "name", "split", "file"}, required=("path", "split"))
        hub = HubSource(
            c.text(h["path"], f"field '{hk}.path'"),
            c.text(h["name"], f"field '{hk}.name'", _PLACEHOLDERS) if h.get("name") is not None else None,
            c.text(h["split"], f"field '{hk}.split'"),
            c.text(h["file"], f"field '{hk}.file'", _PLACEHOLDERS) if h.get("file") else None,
        )
        if hub.file and not local:
            c.fail(f"field '{hk}.file'", "needs 'local' beside it (the file is read in the local format)")
    labelled = spec.get("labelled", True)
    if not isinstance(labelled, bool):
        c.fail(f"field '{key}.labelled'", f"must be true or false, got {labelled!r}")
    return Split(name, local, hub, labelled)


def read_definition(path: str | Path) -> Definition:
    from slam_align.io import read_yaml

    path = Path(path)
    if not path.is_file():
        raise SlamError(f"{path}: benchmark definition not found")
    return parse_definition(read_yaml(path, "benchmark definition"), path)


# ---------------------------------------------------------------------------------------
# The registry: the built-in definitions, plus definition files named on the command line
# ---------------------------------------------------------------------------------------

_REGISTRY: dict[str, Definition] = {}
_BUILTIN: tuple[str, ...] = ()


def _load_builtin() -> None:
    global _BUILTIN
    if _BUILTIN:
        return
    defs = [read_definition(p) for p in sorted(BUILTIN_DIR.glob("*.yaml"))]
    for d in defs:
        if d.name in _REGISTRY:
            raise SlamError(f"{d.path}: benchmark '{d.name}' is defined twice")
        _REGISTRY[d.name] = d
    _BUILTIN = tuple(d.name for d in sorted(defs, key=lambda d: (d.order, d.name)))


def builtin_names() -> tuple[str, ...]:
    """The built-in benchmarks, in their table order (mgsm, msvamp, gsm8k, xcsqa)."""
    _load_builtin()
    return _BUILTIN


def is_definition_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml"))


def get_definition(name: str) -> Definition:
    """A built-in benchmark by name, or a definition file (``PATH.yaml``), registered by its name."""
    _load_builtin()
    if is_definition_file(name):
        d = read_definition(name)
        known = _REGISTRY.get(d.name)
        if known is not None and Path(known.path).resolve() != Path(d.path).resolve():
            raise SlamError(f"{name}: benchmark name '{d.name}' is already taken by {known.path}")
        _REGISTRY[d.name] = d
        return d
    key = name.strip().lower()
    if key not in _REGISTRY:
        raise SlamError(
            f"unknown benchmark '{name}'; expected one of: {', '.join(builtin_names())}, jsonl:PATH or a "
            "definition file PATH.yaml"
        )
    return _REGISTRY[key]


def find_definition(name: str) -> Definition | None:
    """The registered definition called ``name``, or None (``jsonl:`` files, unknown names)."""
    _load_builtin()
    return _REGISTRY.get(name)
