"""Benchmarks as one record type, ``Problem``, loaded from their definitions.

A benchmark is a data file (:mod:`slam_align.data.definitions`; the built-in ones are
``slam_align/benchmarks/{mgsm,msvamp,gsm8k,xcsqa}.yaml``): where its files are (local layout,
hub id/config/split), its languages, the fields of a row and its answer type. One loader
reads every definition, from local files in their original format (``data_dir``) or from
the Hugging Face hub through ``datasets``; both routes go through the same row parser, so a
gold answer is parsed once, the same way (``2,125`` -> 2125.0, ``8.0`` -> 8.0, ``"D"``).

Built-in local layouts (``data_dir`` may be the benchmark folder itself or a parent holding
``mgsm/``, ``msvamp/``, ``gsm8k/``, ``X-CSQA/``):

- MGSM: ``mgsm_XX.tsv``, no header, ``question<TAB>answer`` (split on the last TAB).
- MSVAMP: ``test_<Language>.json``, JSON Lines with ``m_query`` (question), ``response``
  (``"8.0"``) and, except in the English file, ``query`` (the English question).
- GSM8K: ``test.jsonl`` with ``question`` and ``answer`` (final answer after ``####``).
- X-CSQA: ``<lang>/dev.jsonl`` (and ``test.jsonl``), ``{id, lang, question: {stem, choices:
  [{label, text}]}, answerKey}``; Japanese is the folder ``jap``.

``jsonl:PATH`` reads a local JSONL benchmark (``lang``, ``question``, ``answer``, optional
``index`` and ``question_en``), e.g. the synthetic demo world's held-out problems.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slam_align.data.definitions import Definition, Split, builtin_names, get_definition, is_definition_file
from slam_align.data.languages import parse_langs
from slam_align.errors import SlamError
from slam_align.io import read_jsonl, read_text

BENCHMARKS: tuple[str, ...] = builtin_names()  # ("mgsm", "msvamp", "gsm8k", "xcsqa")
BENCHMARK_LANGS: dict[str, tuple[str, ...]] = {n: get_definition(n).languages for n in BENCHMARKS}
# Where each benchmark's evaluation split lives on the hub.
HUB_IDS: dict[str, str] = {
    n: d.splits[d.eval_split].hub.path
    for n in BENCHMARKS
    if (d := get_definition(n)).splits[d.eval_split].hub
}

Choices = tuple[tuple[str, str], ...]  # ((label, text), ...) in the order shown


@dataclass(frozen=True)
class Problem:
    """One benchmark problem in one language.

    ``answer``: the numeric gold answer (``answer_type`` ``number``), or the gold choice label
    (``choice``; None in a split whose answers are hidden). ``question`` is what the model is
    shown: for a choice benchmark the question with its choices (the definition's prompt),
    ``choices`` the (label, text) pairs. ``question_en``: the same problem in English.
    """

    benchmark: str
    lang: str
    index: int
    question: str
    answer: float | str | None
    question_en: str | None = None
    choices: Choices = ()
    answer_type: str = "number"

    @property
    def id(self) -> str:
        return f"{self.benchmark}-{self.lang}-{self.index}"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **asdict(self)}


# ---------------------------------------------------------------------------------------
# Gold answers
# ---------------------------------------------------------------------------------------

_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d+)?|\.\d+)", re.ASCII)
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", re.ASCII)


def parse_gold(text: Any) -> float:
    """A GOLD answer as a float: ``18``, ``"2,125"`` (English thousands commas), ``"8.0"``, ``"-3"``.

    The one gold-answer parser of number benchmarks (benchmarks, ``slam eval``, ``slam score``).
    Deliberately strict: gold answers are clean, finite numbers written the English way in every
    language (MGSM writes ``2,125`` even in its German file), so anything else (words,
    units, several numbers, decimal commas, NaN) is an error rather than a guess. Model
    outputs go through ``slam_align.evaluate.extract`` instead.
    """
    if isinstance(text, bool) or (isinstance(text, float) and not math.isfinite(text)):
        raise SlamError(f"not a number: {text!r}; expected a plain number like 2125, 2,125 or 8.0")
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip()
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    if not _PLAIN_NUMBER.fullmatch(s):
        raise SlamError(f"not a number: {text!r}; expected a plain number like 2125, 2,125 or 8.0")
    return float(s)


def parse_choices(value: Any) -> Choices:
    """Choices as ((label, text), ...) from any of their forms: a list of ``{label, text}``
    (X-CSQA's JSONL), ``{label: [...], text: [...]}`` (the hub's rows), or ``{label: text}``
    (``slam eval``'s predictions). Labels must be distinct, texts non-empty."""
    if isinstance(value, dict) and set(value) == {"label", "text"} and isinstance(value["label"], list):
        labels, texts = value["label"], value["text"]
        if not isinstance(texts, list) or len(labels) != len(texts):
            raise SlamError(f"'label' and 'text' must be lists of the same length, got {value!r}")
        pairs = list(zip(labels, texts))
    elif isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(c, dict) for c in value):
        if not all(set(c) >= {"label", "text"} for c in value):
            raise SlamError(f"every choice needs 'label' and 'text', got {value!r}")
        pairs = [(c["label"], c["text"]) for c in value]
    else:
        raise SlamError(
            f"expected a list of {{label, text}} or {{label: [...], text: [...]}}, got {type(value).__name__}"
        )
    if len(pairs) < 2:
        raise SlamError(f"expected at least two choices, got {len(pairs)}")
    out = []
    for label, text in pairs:
        if not isinstance(label, str) or not label.strip():
            raise SlamError(f"a choice label must be a non-empty string, got {label!r}")
        if not isinstance(text, str) or not text.strip():
            raise SlamError(f"choice {label!r} has no text (got {text!r})")
        out.append((label.strip(), text.strip()))
    labels = [lab for lab, _ in out]
    if len(set(labels)) != len(labels):
        raise SlamError(f"choice labels must be distinct, got {', '.join(labels)}")
    return tuple(out)


def parse_choice_gold(value: Any, choices: Choices) -> str:
    """A gold choice label (``"D"``, ``" d "`` -> ``"D"`` when the labels are upper case): one of
    the labels of ``choices``."""
    labels = [lab for lab, _ in choices]
    if not isinstance(value, str) or not value.strip():
        raise SlamError(f"not a choice label: {value!r}; expected one of {', '.join(labels)}")
    s = value.strip()
    if s not in labels and s.upper() in labels:
        s = s.upper()
    if s not in labels:
        raise SlamError(f"not a choice label: {value!r}; expected one of {', '.join(labels)}")
    return s


def _gold(value: Any, where: str) -> float:
    try:
        return parse_gold(value)
    except SlamError as e:
        raise SlamError(f"{where}: {e}") from None


def get_field(row: dict, name: str) -> Any:
    """``row[name]``; a dotted name reaches into nested objects (``question.stem``)."""
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _field(row: dict, name: str, where: str) -> Any:
    value = get_field(row, name)
    if value is None:
        raise SlamError(f"{where}: missing field '{name}'")
    return value


def _text(row: dict, name: str, where: str) -> str:
    value = _field(row, name, where)
    if not isinstance(value, str) or not value.strip():
        raise SlamError(f"{where}: field '{name}' must be a non-empty string, got {value!r}")
    return value.strip()


# ---------------------------------------------------------------------------------------
# Rows -> problems, as the definition says (shared by the local files and the hub)
# ---------------------------------------------------------------------------------------


def _number_answer(d: Definition, row: dict, where: str) -> float:
    spec = d.fields["answer"]
    names = (spec,) if isinstance(spec, str) else spec
    marker = d.fields.get("answer_after")
    for name in names[:-1]:  # alternatives: the first one present wins (MGSM: answer_number, answer)
        if get_field(row, name) is not None:
            return _gold(get_field(row, name), f"{where}: field '{name}'")
    name = names[-1]
    if marker:  # GSM8K: the number after "#### " on the solution's last line
        value = get_field(row, name)
        if not isinstance(value, str) or marker not in value:
            raise SlamError(f"{where}: field '{name}' has no '{marker} <number>' final line")
        return _gold(value.rsplit(marker, 1)[1], f"{where}: field '{name}'")
    return _gold(_field(row, name, where), f"{where}: field '{name}'")


@dataclass(frozen=True)
class _Parsed:
    """One row read as the definition says, before it is placed among its language's problems."""

    question: str
    answer: float | str | None
    choices: Choices = ()
    key: str | None = None  # the row's id (parallel: id)
    question_en: str | None = None  # from a field of the row (MSVAMP's query)


def parse_row(d: Definition, row: dict, where: str, labelled: bool = True) -> _Parsed:
    """A row of ``d`` (a dict, local or hub) -> question, gold answer, choices; errors name ``where``."""
    f = d.fields
    key = None
    if f.get("id"):
        key = str(_field(row, f["id"], where)).strip()
    if d.answer_type == "choice":
        stem = _text(row, f["question"], where)
        try:
            choices = parse_choices(_field(row, f["choices"], where))
        except SlamError as e:
            raise SlamError(f"{where}: field '{f['choices']}': {e}") from None
        answer = None
        if labelled:
            try:
                answer = parse_choice_gold(get_field(row, f["answer"]), choices)
            except SlamError as e:
                raise SlamError(f"{where}: field '{f['answer']}': {e}") from None
        assert d.prompt is not None
        return _Parsed(d.prompt.render(stem, choices), answer, choices, key)
    question = _text(row, f["question"], where)
    answer = _number_answer(d, row, where) if labelled else None
    q_en = f.get("question_en")
    from_field = q_en if isinstance(q_en, str) and q_en != "parallel" else None
    return _Parsed(question, answer, (), key, (get_field(row, from_field) or None) if from_field else None)


# ---------------------------------------------------------------------------------------
# Local files
# ---------------------------------------------------------------------------------------


def read_mgsm_tsv(path: Path, what: str = "MGSM file") -> list[dict]:
    """``question<TAB>answer`` lines (no header); split on the LAST tab."""
    rows = []
    for lineno, line in enumerate(read_text(path, what).splitlines(), 1):
        if not line.strip():
            continue
        if "\t" not in line:
            raise SlamError(f"{path}: line {lineno}: expected 'question<TAB>answer', found no TAB")
        question, answer = line.rsplit("\t", 1)
        rows.append({"question": question, "answer": answer, "_line": lineno})
    return rows


def _read_jsonl_rows(path: Path) -> list[dict]:
    """JSON Lines keeping each row's line number (``_line``) for error messages."""
    return read_jsonl(path, line_key="_line")


def _read_local(fmt: str, path: Path, name: str) -> list[dict]:
    if fmt == "tsv":
        return read_mgsm_tsv(path, f"{name.upper()} file")
    return _read_jsonl_rows(path)


def _benchmark_dir(d: Definition, split: Split, data_dir: str | Path) -> Path:
    """``data_dir`` itself when it holds the split's files, else ``data_dir/<folder>``."""
    assert split.local is not None
    root = Path(data_dir)
    if not root.is_dir():
        raise SlamError(f"{root}: --data-dir is not a directory")
    candidates = (
        [root, *(root / f for f in split.local.folders)] if split.local.folders else [root, root / d.name]
    )
    marker = split.local.marker
    for candidate in candidates:
        if list(candidate.glob(marker)):
            return candidate
    where = " or in ".join(str(c) for c in candidates)
    raise SlamError(f"{root}: no {d.name} files found (expected {marker} in {where})")


# ---------------------------------------------------------------------------------------
# Hub
# ---------------------------------------------------------------------------------------


def hub_rows(
    path: str,
    name: str | None = None,
    split: str = "test",
    hint: str = "pass --data-dir DIR with the original files instead",
    **kwargs,
) -> list[dict]:
    """Rows of a ``datasets`` dataset as plain dicts; failures become one clear line.

    ``path``/``name``/``kwargs`` go to ``datasets.load_dataset`` unchanged, so tests feed
    local files in the hub's row format (``path="json", data_files=...``) through the same code.
    """
    try:
        import datasets

        ds = datasets.load_dataset(path, name, split=split, **kwargs)
    except Exception as e:  # offline, unknown id, script-based repo, ...: all end the same way
        what = f"{path}" + (f" (config {name})" if name else "")
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise SlamError(
            f"could not load {what} from the Hugging Face hub ({type(e).__name__}: {reason[:200]}); {hint}"
        ) from None
    return [dict(r) for r in ds]


def hub_source(name: str, lang: str, split: str | None = None) -> dict[str, Any]:
    """``datasets.load_dataset`` arguments for one benchmark language (and split) on the hub."""
    d = get_definition(name)
    s = d.splits[split or d.eval_split]
    if s.hub is None:
        raise SlamError(f"{d.name}: split '{s.name}' is not on the hub; pass --data-dir DIR with its files")
    return {
        "path": s.hub.path,
        "name": d.fill(s.hub.name, lang) if s.hub.name else None,
        "split": s.hub.split,
    }


def _hub_split_rows(d: Definition, split: Split, lang: str) -> tuple[list[dict], str]:
    """(rows, where-prefix). A script-based repository (MGSM's ``juletxara/mgsm``), which recent
    ``datasets`` releases no longer run: the repository's own file is fetched and read instead."""
    src = hub_source(d.name, lang, split.name)
    where = f"{src['path']} ({src.get('name') or lang})"
    try:
        return hub_rows(**src), where
    except SlamError as first:
        if split.hub is None or not split.hub.file or "script" not in str(first).lower():
            raise  # offline or unknown: no second slow attempt
        try:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(src["path"], d.fill(split.hub.file, lang), repo_type="dataset")
        except Exception:
            raise first from None
        assert split.local is not None
        return _read_local(split.local.format, Path(path), d.name), where


# ---------------------------------------------------------------------------------------
# One definition, one split: problems per language
# ---------------------------------------------------------------------------------------


class _SplitReader:
    """Reads one split of a definition, language by language, from ``data_dir`` or the hub."""

    def __init__(self, d: Definition, split: Split, data_dir: str | Path | None):
        self.d, self.split, self.data_dir = d, split, data_dir
        self._rows: dict[str, list[tuple[str, dict]]] = {}
        self._english: dict[str, Any] = {}
        if data_dir is not None and split.local is None:
            raise SlamError(
                f"{d.name}: split '{split.name}' has no local files in its definition; drop --data-dir"
            )
        if data_dir is None and split.hub is None:
            raise SlamError(
                f"{d.name}: split '{split.name}' is not on the hub; pass --data-dir DIR with its files"
            )

    def _path(self, lang: str) -> Path:
        assert self.split.local is not None
        return _benchmark_dir(self.d, self.split, self.data_dir) / self.d.fill(self.split.local.file, lang)

    def rows(self, lang: str) -> list[tuple[str, dict]]:
        """(where, row) of ``lang``'s file or hub config, in order."""
        if lang not in self._rows:
            if self.data_dir is not None:
                assert self.split.local is not None
                path = self._path(lang)
                rows = _read_local(self.split.local.format, path, self.d.name)
                self._rows[lang] = [(f"{path}: line {r['_line']}", r) for r in rows]
            else:
                rows, where = _hub_split_rows(self.d, self.split, lang)
                self._rows[lang] = [(f"{where} row {i}", r) for i, r in enumerate(rows)]
        return self._rows[lang]

    def english(self):
        """The English problems this split's languages are parallel to: by index, a list of
        questions; by id, ``{id: (index, question)}``; None when there is no English file."""
        if "en" in self._english:
            return self._english["en"]
        if self.data_dir is not None and not self._path("en").is_file():
            value = None
        elif self.d.parallel == "index":  # the English question texts, as written
            value = [str(get_field(r, self.d.fields["question"]) or "").strip() for _, r in self.rows("en")]
        else:
            value = {}
            for i, (where, r) in enumerate(self.rows("en")):
                parsed = parse_row(self.d, r, where, labelled=False)
                value.setdefault(parsed.key, (i, parsed.question))
        self._english["en"] = value
        return value

    def problems(self, lang: str) -> list[Problem]:
        d, q_en_spec = self.d, self.d.fields.get("question_en")
        english = self.english() if (q_en_spec == "parallel" or d.parallel == "id") and lang != "en" else None
        out, seen = [], set()
        for i, (where, row) in enumerate(self.rows(lang)):
            parsed = parse_row(d, row, where, self.split.labelled)
            index, question_en = i, parsed.question_en
            if d.parallel == "id":
                if parsed.key in seen:
                    raise SlamError(f"{where}: duplicate id '{parsed.key}'")
                seen.add(parsed.key)
                if english is not None:
                    if parsed.key not in english:
                        raise SlamError(
                            f"{where}: id '{parsed.key}' has no English row ({d.name}'s languages are parallel by id)"
                        )
                    index, english_question = english[parsed.key]
                    question_en = english_question if q_en_spec == "parallel" else question_en
            elif q_en_spec == "parallel" and english is not None:
                question_en = english[i] if i < len(english) else None
            if lang == "en":
                question_en = parsed.question
            out.append(
                Problem(
                    d.name,
                    lang,
                    index,
                    parsed.question,
                    parsed.answer,
                    question_en,
                    parsed.choices,
                    d.answer_type,
                )
            )
        return sorted(out, key=lambda p: p.index) if d.parallel == "id" else out


# ---------------------------------------------------------------------------------------
# Local JSONL benchmarks (synthetic world, custom sets)
# ---------------------------------------------------------------------------------------


def load_jsonl_benchmark(path: str | Path, langs: Iterable[str] | None = None) -> list[Problem]:
    """``lang``, ``question``, ``answer`` (+ optional ``index``, ``question_en``) per line.

    ``benchmark`` is the file's stem, so ids read e.g. ``heldout-syn-de-3``. Languages may be
    ISO 639-1 codes or synthetic ``syn-xx`` codes. Without ``index``, rows are numbered in
    file order within each language.
    """
    path = Path(path)
    rows = _read_jsonl_rows(path)
    if not rows:
        raise SlamError(f"{path}: benchmark file is empty")
    bench = path.stem
    counters: dict[str, int] = {}
    seen: set[tuple[str, int]] = set()
    problems = []
    for r in rows:
        where = f"{path}: line {r['_line']}"
        lang = _text(r, "lang", where)
        question = _text(r, "question", where)
        answer = _gold(_field(r, "answer", where), f"{where}: field 'answer'")
        if r.get("index") is not None:
            if isinstance(r["index"], bool) or not isinstance(r["index"], int) or r["index"] < 0:
                raise SlamError(f"{where}: field 'index' must be a non-negative integer, got {r['index']!r}")
            index = r["index"]
        else:
            index = counters.get(lang, 0)
        counters[lang] = max(counters.get(lang, 0), index + 1)
        if (lang, index) in seen:
            raise SlamError(f"{where}: duplicate index {index} for language '{lang}'")
        seen.add((lang, index))
        q_en = r.get("question_en") or (question if lang == "en" else None)
        problems.append(Problem(bench, lang, index, question, answer, q_en))
    available = list(dict.fromkeys(p.lang for p in problems))
    if langs is not None:
        wanted = [langs] if isinstance(langs, str) else list(langs)
        wanted = [w.strip() for x in wanted for w in x.split(",") if w.strip()]
        if wanted != ["all"]:
            missing = [w for w in wanted if w not in available]
            if missing:
                raise SlamError(
                    f"{path}: no problems in language '{missing[0]}'; languages in this file: {', '.join(available)}"
                )
            order = {w: i for i, w in enumerate(wanted)}
            problems = sorted((p for p in problems if p.lang in order), key=lambda p: order[p.lang])
    return problems


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------


def resolve_langs(name: str, langs: str | Iterable[str] | None) -> list[str]:
    """None -> the benchmark's default languages (MGSM, MSVAMP: the paper's 10 it has; X-CSQA:
    all 16); 'all' -> every language it has."""
    d = get_definition(name)
    if langs is None:
        return list(d.default_langs)
    value = langs if isinstance(langs, str) else list(langs)
    try:
        return parse_langs(value, allowed=d.languages)
    except SlamError as e:
        raise SlamError(f"{d.name}: {e}") from None


def benchmark_languages(name: str) -> tuple[str, ...] | None:
    """The languages a benchmark has (None for a ``jsonl:`` file: whatever it holds)."""
    return None if name.startswith("jsonl:") else get_definition(name).languages


def load_benchmark(
    name: str,
    langs: str | Iterable[str] | None = None,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    split: str | None = None,
) -> list[Problem]:
    """Problems of ``name`` (``mgsm``, ``msvamp``, ``gsm8k``, ``xcsqa``, a definition file
    ``PATH.yaml`` or ``jsonl:PATH``), language by language.

    ``data_dir``: local files (the benchmark folder or a parent of ``mgsm/`` ...); None reads
    the hub. ``limit``: the first N problems of every language (the same indices in each,
    so parallel questions stay parallel). Languages keep the order asked for. ``split``:
    another split of the definition than its evaluation split (X-CSQA's ``test``, whose
    answers are hidden: its problems have ``answer`` None).
    """
    if limit is not None and limit < 1:
        raise SlamError(f"--limit must be a positive integer, got {limit}")
    if name.startswith("jsonl:"):
        if split is not None:
            raise SlamError(f"{name}: a jsonl: benchmark has no splits")
        problems = load_jsonl_benchmark(name[len("jsonl:") :], langs)
        return _limit(problems, limit)
    d = get_definition(name if is_definition_file(name) else name.strip().lower())
    codes = resolve_langs(d.name, langs)
    split = split or d.eval_split
    if split not in d.splits:
        raise SlamError(f"{d.name}: no split '{split}'; expected one of: {', '.join(d.splits)}")
    reader = _SplitReader(d, d.splits[split], data_dir)
    problems: list[Problem] = []
    for lang in codes:
        rows = reader.problems(lang)
        if not rows:
            raise SlamError(f"{d.name} ({lang}): no problems found")
        problems += rows
    return _limit(problems, limit)


def _limit(problems: list[Problem], limit: int | None) -> list[Problem]:
    if limit is None:
        return problems
    by_lang: dict[str, list[Problem]] = {}
    for p in problems:
        by_lang.setdefault(p.lang, []).append(p)
    out = []
    for rows in by_lang.values():
        out += sorted(rows, key=lambda p: p.index)[:limit]
    return out


def parse_benchmarks(value: str | Iterable[str]) -> list[str]:
    """'mgsm,msvamp' or a list -> checked benchmark names (``jsonl:PATH`` and ``PATH.yaml`` kept as is)."""
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    items = list(dict.fromkeys(items))  # "mgsm,mgsm" is mgsm once
    if not items:
        raise SlamError("empty benchmark list; expected e.g. 'mgsm,msvamp'")
    for item in items:
        if item.startswith("jsonl:"):
            continue
        get_definition(item if is_definition_file(item) else item.lower())  # unknown names: one clear line
    return items
