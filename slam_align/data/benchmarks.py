"""Benchmarks: MGSM, MSVAMP and the GSM8K test set as one record type, ``Problem``.

Each benchmark is read either from local files in its original format (``data_dir``) or
from the Hugging Face hub through ``datasets``. Both routes go through the same row
parsers, so a gold answer is parsed once, the same way (``2,125`` -> 2125.0, ``8.0`` -> 8.0).

Local layouts (``data_dir`` may be the benchmark folder itself or a parent holding
``mgsm/``, ``msvamp/``, ``gsm8k/``):

- MGSM: ``mgsm_XX.tsv``, no header, ``question<TAB>answer`` (split on the last TAB).
- MSVAMP: ``test_<Language>.json``, JSON Lines with ``m_query`` (question), ``response``
  (``"8.0"``) and, except in the English file, ``query`` (the English question).
- GSM8K: ``test.jsonl`` with ``question`` and ``answer`` (final answer after ``####``).

``jsonl:PATH`` reads a local JSONL benchmark (``lang``, ``question``, ``answer``, optional
``index`` and ``question_en``), e.g. the synthetic demo world's held-out problems.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slam_align.data.languages import LANGUAGE_NAMES, PAPER_LANGS, parse_langs
from slam_align.errors import SlamError
from slam_align.io import read_jsonl

BENCHMARKS = ("mgsm", "msvamp", "gsm8k")

BENCHMARK_LANGS: dict[str, tuple[str, ...]] = {
    "mgsm": ("bn", "th", "sw", "ja", "zh", "de", "fr", "ru", "es", "en", "te"),
    "msvamp": ("bn", "th", "sw", "ja", "zh", "de", "fr", "ru", "es", "en"),
    "gsm8k": ("en",),
}

# Where each benchmark lives on the hub (per-language configs; GSM8K's config is "main").
HUB_IDS: dict[str, str] = {"mgsm": "juletxara/mgsm", "msvamp": "Mathoctopus/MSVAMP", "gsm8k": "openai/gsm8k"}


@dataclass(frozen=True)
class Problem:
    """One benchmark problem in one language. ``answer`` is the numeric gold answer."""

    benchmark: str
    lang: str
    index: int
    question: str
    answer: float
    question_en: str | None = None

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

    The one gold-answer parser (benchmarks, ``slam eval``, ``slam score``). Deliberately
    strict: gold answers are clean, finite numbers written the English way in every
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


def _gold(value: Any, where: str) -> float:
    try:
        return parse_gold(value)
    except SlamError as e:
        raise SlamError(f"{where}: {e}") from None


def _gsm8k_final(answer: Any, where: str) -> float:
    """GSM8K solutions end with ``#### <number>``."""
    if not isinstance(answer, str) or "####" not in answer:
        raise SlamError(f"{where}: field 'answer' has no '#### <number>' final line")
    return _gold(answer.rsplit("####", 1)[1], f"{where}: field 'answer'")


def _field(row: dict, name: str, where: str) -> Any:
    if name not in row or row[name] is None:
        raise SlamError(f"{where}: missing field '{name}'")
    return row[name]


def _text(row: dict, name: str, where: str) -> str:
    value = _field(row, name, where)
    if not isinstance(value, str) or not value.strip():
        raise SlamError(f"{where}: field '{name}' must be a non-empty string, got {value!r}")
    return value.strip()


# ---------------------------------------------------------------------------------------
# Row parsers: shared by the local files and the hub (rows are dicts either way)
# ---------------------------------------------------------------------------------------


def mgsm_problem(row: dict, lang: str, index: int, where: str, question_en: str | None = None) -> Problem:
    """An MGSM row: local TSV rows are ``{question, answer}``; hub rows carry ``answer_number``."""
    question = _text(row, "question", where)
    if row.get("answer_number") is not None:
        answer = _gold(row["answer_number"], f"{where}: field 'answer_number'")
    else:
        answer = _gold(_field(row, "answer", where), f"{where}: field 'answer'")
    if lang == "en":
        question_en = question
    return Problem("mgsm", lang, index, question, answer, question_en)


def msvamp_problem(row: dict, lang: str, index: int, where: str) -> Problem:
    question = _text(row, "m_query", where)
    answer = _gold(_field(row, "response", where), f"{where}: field 'response'")
    # Non-English files keep the English SVAMP question in `query`; the English file has none.
    question_en = question if lang == "en" else (row.get("query") or None)
    return Problem("msvamp", lang, index, question, answer, question_en)


def gsm8k_problem(row: dict, lang: str, index: int, where: str) -> Problem:
    question = _text(row, "question", where)
    return Problem("gsm8k", "en", index, question, _gsm8k_final(row.get("answer"), where), question)


# ---------------------------------------------------------------------------------------
# Local files
# ---------------------------------------------------------------------------------------


def read_mgsm_tsv(path: Path) -> list[dict]:
    """``question<TAB>answer`` lines (no header); split on the LAST tab."""
    if not path.is_file():
        raise SlamError(f"{path}: MGSM file not found")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
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


def _benchmark_dir(name: str, data_dir: str | Path, marker: str) -> Path:
    """``data_dir`` itself when it holds ``marker``, else ``data_dir/<name>``."""
    root = Path(data_dir)
    if not root.is_dir():
        raise SlamError(f"{root}: --data-dir is not a directory")
    for candidate in (root, root / name):
        if list(candidate.glob(marker)):
            return candidate
    raise SlamError(f"{root}: no {name} files found (expected {marker} in {root} or in {root / name})")


def _msvamp_file(folder: Path, lang: str) -> Path:
    return folder / f"test_{LANGUAGE_NAMES[lang]}.json"


def _load_local(name: str, lang: str, data_dir: str | Path) -> list[Problem]:
    if name == "mgsm":
        folder = _benchmark_dir(name, data_dir, "mgsm_*.tsv")
        path = folder / f"mgsm_{lang}.tsv"
        rows = read_mgsm_tsv(path)
        english = _mgsm_english_local(folder) if lang != "en" else None
        return [
            mgsm_problem(r, lang, i, f"{path}: line {r['_line']}", _pick(english, i))
            for i, r in enumerate(rows)
        ]
    if name == "msvamp":
        path = _msvamp_file(_benchmark_dir(name, data_dir, "test_*.json"), lang)
        rows = _read_jsonl_rows(path)
        return [msvamp_problem(r, lang, i, f"{path}: line {r['_line']}") for i, r in enumerate(rows)]
    path = _benchmark_dir(name, data_dir, "test.jsonl") / "test.jsonl"
    rows = _read_jsonl_rows(path)
    return [gsm8k_problem(r, lang, i, f"{path}: line {r['_line']}") for i, r in enumerate(rows)]


def _mgsm_english_local(folder: Path) -> list[str] | None:
    """MGSM is parallel: row i of every file is row i of ``mgsm_en.tsv``."""
    path = folder / "mgsm_en.tsv"
    if not path.is_file():
        return None
    return [r["question"].strip() for r in read_mgsm_tsv(path)]


def _pick(items: list[str] | None, i: int) -> str | None:
    return items[i] if items is not None and i < len(items) else None


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


def hub_source(name: str, lang: str) -> dict[str, Any]:
    """``datasets.load_dataset`` arguments for one benchmark language on the hub."""
    if name == "gsm8k":
        return {"path": HUB_IDS[name], "name": "main", "split": "test"}
    return {"path": HUB_IDS[name], "name": lang, "split": "test"}


def _load_hub(name: str, lang: str) -> list[Problem]:
    src = hub_source(name, lang)
    where = f"{src['path']} ({src.get('name') or lang})"
    if name == "mgsm":
        rows = _mgsm_hub_rows(lang)
        english = None
        if lang != "en":
            english = [str(r.get("question", "")).strip() for r in _mgsm_hub_rows("en")]
        return [mgsm_problem(r, lang, i, f"{where} row {i}", _pick(english, i)) for i, r in enumerate(rows)]
    rows = hub_rows(**src)
    parse = msvamp_problem if name == "msvamp" else gsm8k_problem
    return [parse(r, lang, i, f"{where} row {i}") for i, r in enumerate(rows)]


def _mgsm_hub_rows(lang: str) -> list[dict]:
    """``juletxara/mgsm`` per-language config; its repo also holds the original TSVs.

    The repo is script-based, which recent ``datasets`` releases no longer run; then the
    TSV file itself is fetched from the same repo and parsed like a local file.
    """
    src = hub_source("mgsm", lang)
    try:
        return hub_rows(**src)
    except SlamError as first:
        if "script" not in str(first).lower():  # offline or unknown: no second slow attempt
            raise
        try:
            from huggingface_hub import hf_hub_download

            path = hf_hub_download(src["path"], f"mgsm_{lang}.tsv", repo_type="dataset")
        except Exception:
            raise first from None
        return read_mgsm_tsv(Path(path))


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
    """None -> the paper's languages this benchmark has; 'all' -> every language it has."""
    if name not in BENCHMARK_LANGS:
        raise SlamError(f"unknown benchmark '{name}'; expected one of: {', '.join(BENCHMARKS)} or jsonl:PATH")
    available = BENCHMARK_LANGS[name]
    if langs is None:
        return [lang for lang in PAPER_LANGS if lang in available]
    value = langs if isinstance(langs, str) else list(langs)
    try:
        return parse_langs(value, allowed=available)
    except SlamError as e:
        raise SlamError(f"{name}: {e}") from None


def load_benchmark(
    name: str,
    langs: str | Iterable[str] | None = None,
    data_dir: str | Path | None = None,
    limit: int | None = None,
) -> list[Problem]:
    """Problems of ``name`` (``mgsm``, ``msvamp``, ``gsm8k`` or ``jsonl:PATH``), language by language.

    ``data_dir``: local files (the benchmark folder or a parent of ``mgsm/`` ...); None reads
    the hub. ``limit``: the first N problems of every language (the same indices in each,
    so parallel questions stay parallel). Languages keep the order asked for.
    """
    if limit is not None and limit < 1:
        raise SlamError(f"--limit must be a positive integer, got {limit}")
    if name.startswith("jsonl:"):
        problems = load_jsonl_benchmark(name[len("jsonl:") :], langs)
        return _limit(problems, limit)
    name = name.strip().lower()
    codes = resolve_langs(name, langs)
    loader: Callable[[str], list[Problem]]
    if data_dir is not None:
        loader = lambda lang: _load_local(name, lang, data_dir)  # noqa: E731
    else:
        loader = lambda lang: _load_hub(name, lang)  # noqa: E731
    problems: list[Problem] = []
    for lang in codes:
        rows = loader(lang)
        if not rows:
            raise SlamError(f"{name} ({lang}): no problems found")
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
    """'mgsm,msvamp' or a list -> checked benchmark names (``jsonl:PATH`` kept as is)."""
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    items = list(dict.fromkeys(items))  # "mgsm,mgsm" is mgsm once
    if not items:
        raise SlamError("empty benchmark list; expected e.g. 'mgsm,msvamp'")
    for item in items:
        if not item.startswith("jsonl:") and item.lower() not in BENCHMARKS:
            raise SlamError(
                f"unknown benchmark '{item}'; expected one of: {', '.join(BENCHMARKS)} or jsonl:PATH"
            )
    return items
