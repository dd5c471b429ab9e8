"""Mixture sources: the schema of one entry under ``sources:`` and the reader of each type.

A source names a ``type`` (a row of :data:`READERS`), a local ``path`` or a ``hub`` id,
languages, a size (``size`` / ``per_language`` / ``ratio``) and a ``kind``
(``alignment``: question in X -> English question; ``response``: question -> chain of
thought). Adding a format is one reader function and one row in :data:`READERS`.

Beside the math sources: ``multiple-choice`` (CommonsenseQA / X-CSQA questions with their
answer), ``flores`` (FLORES-200 / FLORES+ sentences X -> English) and ``benchmark-question``
(a benchmark's own parallel questions X -> English, e.g. X-CSQA validation: evaluation data,
which decontamination would remove again unless told otherwise).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slam_align.data.decontaminate import normalize_text
from slam_align.data.languages import language_name
from slam_align.data.training import (
    ALIGNMENT,
    RESPONSE,
    Example,
    ParallelPair,
    alignment_examples,
    read_alpaca,
    read_flores,
    read_gsm8kinstruct,
    read_mathoctopus,
    read_metamath,
    read_multiple_choice,
    read_qalign_pairs,
)
from slam_align.errors import SlamError

_SOURCE_KEYS = {
    "name", "type", "path", "hub", "split", "langs", "lang", "kind", "size", "ratio", "per_language",
    "field_map", "types", "answers", "keep_untranslated", "benchmark", "codes", "text_field",
}  # fmt: skip
_DEFAULT_KIND = {"qalign-question": ALIGNMENT, "flores": ALIGNMENT, "benchmark-question": ALIGNMENT}
# Types whose reader has a default when neither path nor hub is given
_NO_PATH_NEEDED = ("metamathqa", "mathoctopus", "benchmark-question")


@dataclass
class Source:
    name: str
    type: str
    spec: dict[str, Any]
    where: str  # "sources[2] (x-answers)" for error messages


def parse_sources(raw: list[dict]) -> list[Source]:
    if not raw:
        raise SlamError("config: no sources; list at least one under 'sources:'")
    out, names = [], set()
    for i, spec in enumerate(raw):
        where = f"sources[{i}]"
        if not isinstance(spec, dict):
            raise SlamError(
                f"{where}: expected a mapping (type, path or hub, ...), got {type(spec).__name__}"
            )
        unknown = sorted(set(spec) - _SOURCE_KEYS)
        if unknown:
            raise SlamError(
                f"{where}: unknown key '{unknown[0]}'; known keys: {', '.join(sorted(_SOURCE_KEYS))}"
            )
        stype = spec.get("type")
        if stype not in SOURCE_TYPES:
            raise SlamError(f"{where}: field 'type' is {stype!r}; expected one of: {', '.join(SOURCE_TYPES)}")
        name = str(spec.get("name") or f"{stype}-{i}")
        if name in names:
            raise SlamError(f"{where}: duplicate source name '{name}'")
        names.add(name)
        where = f"{where} ({name})"
        if stype not in _NO_PATH_NEEDED and not (spec.get("path") or spec.get("hub")):
            raise SlamError(f"{where}: missing field 'path'")
        if stype == "benchmark-question" and not spec.get("benchmark"):
            raise SlamError(f"{where}: missing field 'benchmark' (whose parallel questions to align)")
        if spec.get("path") and spec.get("hub"):
            raise SlamError(f"{where}: give 'path' or 'hub', not both")
        if spec.get("kind", _DEFAULT_KIND.get(stype, RESPONSE)) not in (ALIGNMENT, RESPONSE):
            raise SlamError(f"{where}: field 'kind' is {spec['kind']!r}; expected alignment or response")
        if stype == "qalign-question-answer" and not isinstance(spec.get("answers"), dict):
            raise SlamError(f"{where}: missing field 'answers' (a source of English question -> answer rows)")
        _check_sizes(spec, where)
        out.append(Source(name, stype, spec, where))
    return out


def _check_sizes(spec: dict, where: str) -> None:
    given = [k for k in ("size", "ratio", "per_language") if spec.get(k) is not None]
    if len(given) > 1:
        raise SlamError(f"{where}: give one of size, ratio, per_language (got {', '.join(given)})")
    for key in ("size", "per_language"):
        v = spec.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SlamError(f"{where}: field '{key}' must be a positive integer, got {v!r}")
    r = spec.get("ratio")
    if r is not None and (isinstance(r, bool) or not isinstance(r, int | float) or not 0 < r <= 1):
        raise SlamError(f"{where}: field 'ratio' must be a number in (0, 1], got {r!r}")


def parse_langs_field(value: Any, where: str) -> list[str] | None:
    """A ``langs`` field (comma-separated text or a list) as checked language codes."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = [str(v).strip() for v in items if str(v).strip()]
    for code in out:
        try:
            language_name(code)
        except SlamError as e:
            raise SlamError(f"{where}: field 'langs': {e}") from None
    return out


def _path(spec: dict, root: Path) -> Path | None:
    if not spec.get("path"):
        return None
    p = Path(os.path.expanduser(os.path.expandvars(str(spec["path"]))))
    return p if p.is_absolute() else root / p


@dataclass
class _Context:
    """What a reader needs besides its source: where relative paths start, and a tally."""

    root: Path
    notes: Counter  # (source, "untranslated") -> QAlign pairs dropped as untranslated
    langs: list[str] | None = None  # the mixture's languages (sources that read one file per language)


def read_source(
    src: Source, root: Path, notes: Counter | None = None, langs: list[str] | None = None
) -> list[Example]:
    """All rows of one source (before language filtering, dedup and sampling).

    ``notes[(source, "untranslated")]`` counts QAlign pairs dropped because the "translation"
    is the English question itself (the shared samples hold 20 such pairs, 16 of them in fr).
    ``langs``: the mixture's languages, read by sources with one file per language (FLORES, a
    benchmark's questions) when the source names none.
    """
    ctx = _Context(root, Counter() if notes is None else notes, langs)
    kind = src.spec.get("kind", _DEFAULT_KIND.get(src.type, RESPONSE))
    try:
        rows = READERS[src.type](src, ctx)
    except SlamError as e:
        raise SlamError(f"{src.where}: {e}") from None
    for ex in rows:
        ex.source = src.name
        # Alpaca files may carry their own per-row kind; an explicit source kind wins.
        if src.spec.get("kind") or src.type != "alpaca" or not ex.kind:
            ex.kind = kind
    return rows


def _path(src: Source, ctx: _Context) -> Path | None:
    if not src.spec.get("path"):
        return None
    p = Path(os.path.expanduser(os.path.expandvars(str(src.spec["path"]))))
    return p if p.is_absolute() else ctx.root / p


def _langs(src: Source) -> list[str] | None:
    return parse_langs_field(src.spec.get("langs"), src.where)


def _qalign_pairs(src: Source, ctx: _Context):
    path = _path(src, ctx)
    if path is None:
        raise SlamError(f"type {src.type} needs a local 'path' (QAlign's question-translation data)")
    pairs = read_qalign_pairs(path, _langs(src))
    if src.spec.get("keep_untranslated"):
        return pairs
    kept = [p for p in pairs if normalize_text(p.text) != normalize_text(p.english)]
    ctx.notes[(src.name, "untranslated")] += len(pairs) - len(kept)
    return kept


def _read_alpaca(src: Source, ctx: _Context) -> list[Example]:
    path = _path(src, ctx)
    if path is None:
        raise SlamError("type alpaca needs a local 'path'")
    return read_alpaca(path, src.spec.get("field_map"), lang=src.spec.get("lang"))


def _read_qalign_question(src: Source, ctx: _Context) -> list[Example]:
    return alignment_examples(_qalign_pairs(src, ctx), source=src.name)


def _read_qalign_question_answer(src: Source, ctx: _Context) -> list[Example]:
    """X question -> English answer: QAlign pairs (X question, English question) joined with an
    English question -> answer source on the normalised English question."""
    answers_src = parse_sources([{"name": f"{src.name}.answers", **src.spec["answers"]}])[0]
    answers: dict[str, str] = {}
    for ex in read_source(answers_src, ctx.root):
        if ex.lang == "en":
            answers.setdefault(normalize_text(ex.query), ex.output)
    out = []
    for pair in _qalign_pairs(src, ctx):
        answer = answers.get(normalize_text(pair.english))
        if answer is not None:
            out.append(Example(pair.text, answer, lang=pair.lang, source=src.name, kind=RESPONSE))
    if not out:
        raise SlamError(
            f"{_path(src, ctx)}: no English question matched a question of 'answers' ({answers_src.where})"
        )
    return out


def _read_mathoctopus(src: Source, ctx: _Context) -> list[Example]:
    return read_mathoctopus(_path(src, ctx), src.spec.get("hub"), _langs(src), source=src.name)


def _read_metamathqa(src: Source, ctx: _Context) -> list[Example]:
    return read_metamath(_path(src, ctx), src.spec.get("hub"), types=src.spec.get("types"), source=src.name)


def _read_gsm8kinstruct(src: Source, ctx: _Context) -> list[Example]:
    path, hub = _path(src, ctx), src.spec.get("hub")
    return read_gsm8kinstruct(path, lang=src.spec.get("lang", "en"), source=src.name, hub=hub)


def _read_multiple_choice(src: Source, ctx: _Context) -> list[Example]:
    spec = src.spec
    kwargs = {"split": spec.get("split", "train")} if spec.get("hub") else {}
    return read_multiple_choice(
        _path(src, ctx),
        spec.get("hub"),
        benchmark=spec.get("benchmark", "xcsqa"),
        lang=spec.get("lang", "en"),
        source=src.name,
        field_map=spec.get("field_map"),
        **kwargs,
    )


def _read_flores(src: Source, ctx: _Context) -> list[Example]:
    spec = src.spec
    pairs = read_flores(
        _path(src, ctx),
        spec.get("hub"),
        langs=_langs(src) or ctx.langs,
        split=spec.get("split", "dev"),
        codes=spec.get("codes"),
        text_field=spec.get("text_field"),
    )
    return alignment_examples(pairs, source=src.name)


def _read_benchmark_question(src: Source, ctx: _Context) -> list[Example]:
    """A benchmark's parallel questions as X -> English question pairs (as the model sees them:
    X-CSQA's with their choices). ``path``: the benchmark's local files (as --data-dir); none: the hub."""
    from slam_align.data.benchmarks import benchmark_languages, load_benchmark

    name = src.spec["benchmark"]
    langs = _langs(src) or [lang for lang in ctx.langs or [] if lang in (benchmark_languages(name) or [lang])]
    langs = [lang for lang in langs if lang != "en"] or None
    problems = load_benchmark(
        src.spec["benchmark"], langs, data_dir=_path(src, ctx), split=src.spec.get("split")
    )
    pairs = [
        ParallelPair(p.lang, p.question, p.question_en, f"{p.id}")
        for p in problems
        if p.lang != "en" and p.question_en
    ]
    if not pairs:
        raise SlamError(f"{src.spec['benchmark']}: no non-English question with an English counterpart")
    return alignment_examples(pairs, source=src.name)


# type -> reader: the one table of source formats
READERS = {
    "alpaca": _read_alpaca,
    "qalign-question": _read_qalign_question,
    "qalign-question-answer": _read_qalign_question_answer,
    "mathoctopus": _read_mathoctopus,
    "metamathqa": _read_metamathqa,
    "gsm8kinstruct": _read_gsm8kinstruct,
    "multiple-choice": _read_multiple_choice,
    "flores": _read_flores,
    "benchmark-question": _read_benchmark_question,
}
SOURCE_TYPES = tuple(READERS)
