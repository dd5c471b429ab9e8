"""Training data: one record type (``Example``) and readers for the formats the baselines publish.

- Alpaca JSON array or JSONL (``instruction``, optional ``input``, ``output``; other field
  names mappable): :func:`read_alpaca`. Our own ``train.jsonl`` (``slam data build``) is
  Alpaca plus ``lang`` / ``source`` / ``kind``, read by the same function.
- QAlign question translation (line-aligned ``train.X`` / ``train.en`` text files per
  language pair, or the JSONL sample form): :func:`read_qalign_question`.
- MathOctopus ``GSM8KInstruct_Parallel`` / ``MGSM8KInstruct_Cross`` (``prompt``/``chosen``):
  :func:`read_mathoctopus`.
- MetaMathQA (``query``/``response``): :func:`read_metamath`.
- QAlign's gsm8kinstruct (``question``/``answer``): :func:`read_gsm8kinstruct`.
- Multiple-choice questions with their answer (CommonsenseQA, X-CSQA rows), shown as a
  benchmark definition shows them: :func:`read_multiple_choice`.
- FLORES-200 / FLORES+ parallel sentences (X -> English translation pairs): :func:`read_flores`.

Readers take a local ``path`` or a hub id (``hub=``, read through ``datasets``); both go
through the same row parsing. Every error names file, line and field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from slam_align.data.languages import LANGUAGE_NAMES, language_name
from slam_align.errors import SlamError
from slam_align.io import read_text

ALIGNMENT = "alignment"  # question in X -> the English question
RESPONSE = "response"  # question -> chain-of-thought answer

HUB_MATHOCTOPUS_PARALLEL = "Mathoctopus/GSM8KInstruct_Parallel"
HUB_MATHOCTOPUS_CROSS = "Mathoctopus/MGSM8KInstruct_Cross"
HUB_METAMATHQA = "meta-math/MetaMathQA"


@dataclass
class Example:
    """One supervised example: the prompt template wraps ``instruction`` (+ ``input``)."""

    instruction: str
    output: str
    input: str = ""
    lang: str = "en"
    source: str = ""
    kind: str = ""

    @property
    def query(self) -> str:
        """What a prompt template receives: the instruction, the input on its own paragraph."""
        return f"{self.instruction}\n\n{self.input}" if self.input else self.instruction

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


# ---------------------------------------------------------------------------------------
# Rows: local JSON / JSONL files (with line numbers) or hub datasets
# ---------------------------------------------------------------------------------------


def iter_json_rows(path: str | Path) -> Iterator[tuple[str, dict]]:
    """``(where, row)`` for a JSON array or JSON Lines file; ``where`` is ``'FILE: line N'``."""
    path = Path(path)
    if not path.is_file():
        raise SlamError(f"{path}: training file not found")
    text = read_text(path, "training file (JSON or JSON Lines)")
    if not text.strip():
        raise SlamError(f"{path}: file is empty; expected JSON array or JSON Lines rows")
    items = _json_array(path, text) if text.lstrip().startswith("[") else _json_lines(path, text)
    for lineno, row in items:
        where = f"{path}: line {lineno}"
        if not isinstance(row, dict):
            raise SlamError(f"{where}: expected a JSON object, got {type(row).__name__}")
        yield where, row


def _json_lines(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield lineno, json.loads(line)
        except json.JSONDecodeError as e:
            raise SlamError(f"{path}: line {lineno}: not valid JSON ({e.msg})") from None


def _json_array(path: Path, text: str) -> Iterator[tuple[int, Any]]:
    """Elements of a top-level JSON array, each with the line it starts on (for error messages)."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    pos = ws.match(text, text.index("[") + 1).end()
    if text.startswith("]", pos):
        return
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise SlamError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
        yield text.count("\n", 0, pos) + 1, value
        pos = ws.match(text, end).end()
        if text.startswith(",", pos):
            pos = ws.match(text, pos + 1).end()
        elif text.startswith("]", pos):
            if text[pos + 1 :].strip():
                line = text.count("\n", 0, pos) + 1
                raise SlamError(f"{path}: line {line}: unexpected text after the JSON array")
            return
        else:
            line = text.count("\n", 0, pos) + 1
            raise SlamError(f"{path}: line {line}: not valid JSON (expected ',' or ']' in the array)")


def iter_hub_rows(hub: str, split: str = "train", **kwargs) -> Iterator[tuple[str, dict]]:
    """``(where, row)`` of a hub dataset, read with ``datasets.load_dataset`` (``kwargs`` go to it)."""
    from slam_align.data.benchmarks import hub_rows

    rows = hub_rows(
        hub, kwargs.pop("name", None), split=split, hint="give a local file with path: instead", **kwargs
    )
    for i, row in enumerate(rows):
        yield f"{hub} row {i}", row


def iter_rows(
    path: str | Path | None = None, hub: str | None = None, **hub_kwargs
) -> Iterator[tuple[str, dict]]:
    if (path is None) == (hub is None):
        raise SlamError("give exactly one of a local path or a hub id")
    return iter_json_rows(path) if path is not None else iter_hub_rows(hub, **hub_kwargs)


def _string(row: dict, key: str, where: str, *, required: bool = True) -> str:
    value = row.get(key)
    if value is None:
        if required:
            raise SlamError(f"{where}: missing field '{key}'")
        return ""
    if not isinstance(value, str):
        raise SlamError(f"{where}: field '{key}' must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise SlamError(f"{where}: field '{key}' is empty")
    return value


def _check_lang(code: str, where: str) -> str:
    try:
        language_name(code)
    except SlamError as e:
        raise SlamError(f"{where}: {e}") from None
    return code


# ---------------------------------------------------------------------------------------
# Alpaca
# ---------------------------------------------------------------------------------------

_ALPACA_FIELDS = ("instruction", "input", "output", "lang", "source", "kind")


def read_alpaca(
    path: str | Path,
    field_map: dict[str, str] | None = None,
    *,
    lang: str | None = None,
    source: str | None = None,
    kind: str | None = None,
) -> list[Example]:
    """Alpaca rows (JSON array or JSONL). ``field_map`` maps our field names to the file's,
    e.g. ``{"instruction": "query", "output": "response"}``. Optional ``lang``/``source``/``kind``
    columns are kept (the arguments are defaults for rows without them)."""
    path = Path(path)
    fmap = {name: name for name in _ALPACA_FIELDS}
    for ours, theirs in (field_map or {}).items():
        if ours not in fmap:
            raise SlamError(
                f"field map: unknown field '{ours}'; expected one of: {', '.join(_ALPACA_FIELDS)}"
            )
        fmap[ours] = theirs
    examples = []
    for where, row in iter_json_rows(path):
        row_lang = _string(row, fmap["lang"], where, required=False) or lang or "en"
        examples.append(
            Example(
                instruction=_string(row, fmap["instruction"], where),
                output=_string(row, fmap["output"], where),
                input=_string(row, fmap["input"], where, required=False),
                lang=_check_lang(row_lang, where),
                source=_string(row, fmap["source"], where, required=False) or source or path.name,
                kind=_string(row, fmap["kind"], where, required=False) or kind or "",
            )
        )
    if not examples:
        raise SlamError(f"{path}: no training examples (empty file)")
    return examples


# ---------------------------------------------------------------------------------------
# QAlign question translation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParallelPair:
    """One line-aligned pair: a question in ``lang`` and its English translation."""

    lang: str
    text: str
    english: str
    where: str


def translation_instruction(src_lang: str, tgt_lang: str = "en") -> str:
    """QAlign's instruction prefix (``data/gsmtrans/gsmtrans.py``); the source text follows it."""
    return f"Translate the following sentences from {language_name(src_lang)} to {language_name(tgt_lang)}. "


def read_parallel_text(src_path: str | Path, tgt_path: str | Path, lang: str) -> list[ParallelPair]:
    """Two line-aligned plain-text files (``train.X``, ``train.en``), one question per line."""
    src_path, tgt_path = Path(src_path), Path(tgt_path)
    for p in (src_path, tgt_path):
        if not p.is_file():
            raise SlamError(f"{p}: parallel text file not found")
    src = read_text(src_path, "parallel text file").splitlines()
    tgt = read_text(tgt_path, "parallel text file").splitlines()
    if len(src) != len(tgt):
        raise SlamError(
            f"{src_path}: {len(src)} lines but {tgt_path} has {len(tgt)}; parallel files must be line-aligned"
        )
    if not src:
        raise SlamError(f"{src_path}: file is empty")
    pairs = []
    for i, (s, t) in enumerate(zip(src, tgt), 1):
        for p, text in ((src_path, s), (tgt_path, t)):
            if not text.strip():
                raise SlamError(f"{p}: line {i}: empty line in a parallel file")
        pairs.append(ParallelPair(lang, s.strip(), t.strip(), f"{src_path}: line {i}"))
    return pairs


def _pairs_from_jsonl(path: Path) -> list[ParallelPair]:
    """The JSONL sample form: ``{line, source_lang, target_lang, source, target}``."""
    pairs = []
    for where, row in iter_json_rows(path):
        lang = _check_lang(_string(row, "source_lang", where), where)
        target_lang = _string(row, "target_lang", where, required=False) or "en"
        if target_lang != "en":
            raise SlamError(f"{where}: field 'target_lang' is '{target_lang}'; expected 'en'")
        pairs.append(
            ParallelPair(
                lang, _string(row, "source", where).strip(), _string(row, "target", where).strip(), where
            )
        )
    if not pairs:
        raise SlamError(f"{path}: no rows")
    return pairs


_PAIR_NAME = re.compile(r"^([a-z]{2})-en(\..*)?$")


def read_qalign_pairs(path: str | Path, langs: Iterable[str] | None = None) -> list[ParallelPair]:
    """X -> English question pairs from any of QAlign's layouts.

    ``path`` may be a JSONL sample file (``de-en.first200.jsonl``), a pair directory holding
    ``train.de`` and ``train.en``, or a parent holding ``<X>-en`` directories / ``<X>-en*.jsonl``
    files (QAlign's ``data/gsmtrans/gsm8kinstruct_question``). ``langs`` filters (and every
    language asked for must be there).
    """
    path = Path(path)
    wanted = None if langs is None else [_check_lang(code, str(path)) for code in langs]
    if path.is_file():
        pairs = _pairs_from_jsonl(path)
    elif path.is_dir() and (path / "train.en").is_file():
        others = sorted(p for p in path.glob("train.*") if p.suffix != ".en")
        if len(others) != 1:
            raise SlamError(f"{path}: expected one train.X file beside train.en, found {len(others)}")
        lang = _check_lang(others[0].suffix[1:], str(others[0]))
        pairs = read_parallel_text(others[0], path / "train.en", lang)
    elif path.is_dir():
        found: dict[str, Path] = {}
        for child in sorted(path.iterdir()):
            m = _PAIR_NAME.match(child.name)
            if m and (child.is_dir() or child.suffix == ".jsonl"):
                found.setdefault(m.group(1), child)
        if not found:
            raise SlamError(
                f"{path}: no QAlign pairs found (expected <X>-en/ directories or <X>-en*.jsonl files)"
            )
        for code in wanted or []:
            if code not in found:
                raise SlamError(f"{path}: no '{code}-en' data here; available: {', '.join(found)}")
        pairs = []
        for code, child in found.items():
            if wanted is None or code in wanted:
                pairs += read_qalign_pairs(child)
    else:
        raise SlamError(f"{path}: QAlign data not found")
    if wanted is not None:
        pairs = [p for p in pairs if p.lang in wanted]
    return pairs


def alignment_examples(pairs: Iterable[ParallelPair], source: str = "qalign-question") -> list[Example]:
    """Question alignment examples as QAlign builds them: instruction = "Translate the following
    sentences from <X> to English. " + question, output = the English question."""
    return [
        Example(
            translation_instruction(p.lang) + p.text, p.english, lang=p.lang, source=source, kind=ALIGNMENT
        )
        for p in pairs
    ]


def read_qalign_question(
    path: str | Path, langs: Iterable[str] | None = None, source: str = "qalign-question"
) -> list[Example]:
    """QAlign's question-translation data (any layout of :func:`read_qalign_pairs`) as examples."""
    return alignment_examples(read_qalign_pairs(path, langs), source)


# ---------------------------------------------------------------------------------------
# Question -> chain-of-thought answer formats
# ---------------------------------------------------------------------------------------


def _qa_examples(rows, qkey: str, akey: str, lang: str, source: str) -> list[Example]:
    out = [
        Example(_string(r, qkey, w).strip(), _string(r, akey, w), lang=lang, source=source, kind=RESPONSE)
        for w, r in rows
    ]
    if not out:
        raise SlamError(f"{source}: no rows")
    return out


def read_gsm8kinstruct(
    path: str | Path | None = None,
    lang: str = "en",
    source: str = "gsm8kinstruct",
    hub: str | None = None,
    **hub_kwargs,
) -> list[Example]:
    """QAlign's ``data/gsm8kinstruct/<X>/train.txt``: JSON Lines ``{question, answer}``."""
    rows = iter_rows(path, hub, **hub_kwargs)
    return _qa_examples(rows, "question", "answer", _check_lang(lang, str(path or hub)), source)


def read_metamath(
    path: str | Path | None = None,
    hub: str | None = None,
    types: Iterable[str] | None = None,
    source: str = "metamathqa",
    **hub_kwargs,
) -> list[Example]:
    """MetaMathQA (``query`` -> ``response``; English). ``types`` keeps e.g. only ``GSM_*`` rows
    (``fnmatch`` patterns on the ``type`` field)."""
    from fnmatch import fnmatch

    if path is None and hub is None:
        hub = HUB_METAMATHQA
    rows = iter_rows(path, hub, **hub_kwargs)
    if types:
        patterns = list(types)
        rows = ((w, r) for w, r in rows if any(fnmatch(str(r.get("type", "")), pat) for pat in patterns))
    return _qa_examples(rows, "query", "response", "en", source)


_INSTRUCTION = re.compile(r"###\s*Instruction:\s*\n(.*?)\n\s*###\s*Response:", re.S)
_NAME_TO_CODE = {name.lower(): code for code, name in LANGUAGE_NAMES.items()}
_ANSWER_IN = re.compile(r"(?:answer|respond|request) in ([A-Z][a-z]+)")


def _mathoctopus_lang(row: dict, prompt: str, where: str) -> str:
    """The ``language`` field when there is one, else the language the prompt names ("in German")."""
    value = row.get("language") or row.get("lang")
    if isinstance(value, str) and value.strip():
        v = value.strip()
        code = _NAME_TO_CODE.get(v.lower(), v.lower())
        return _check_lang(code, f"{where}: field 'language'")
    header = prompt.split("### Instruction", 1)[0]
    for m in _ANSWER_IN.finditer(header):
        if m.group(1).lower() in _NAME_TO_CODE:
            return _NAME_TO_CODE[m.group(1).lower()]
    for name, code in _NAME_TO_CODE.items():  # QAlign's rule: the language name anywhere in the prompt
        if re.search(rf"\b{name}\b", header, re.I):
            return code
    raise SlamError(f"{where}: field 'prompt' names no known language; add a 'language' field")


def read_mathoctopus(
    path: str | Path | None = None,
    hub: str | None = None,
    langs: Iterable[str] | None = None,
    source: str = "mathoctopus",
    **hub_kwargs,
) -> list[Example]:
    """MathOctopus ``GSM8KInstruct_Parallel`` / ``MGSM8KInstruct_Cross`` rows (``prompt``, ``chosen``).

    ``prompt`` is an Alpaca-style prompt naming the response language; the question is taken
    from its ``### Instruction:`` block and ``lang`` is that named language (or the row's
    ``language`` field where present).
    """
    if path is None and hub is None:
        hub = HUB_MATHOCTOPUS_PARALLEL
    wanted = None if langs is None else {_check_lang(c, "langs") for c in langs}
    out = []
    for where, row in iter_rows(path, hub, **hub_kwargs):
        prompt = _string(row, "prompt", where)
        lang = _mathoctopus_lang(row, prompt, where)
        if wanted is not None and lang not in wanted:
            continue
        m = _INSTRUCTION.search(prompt)
        question = (m.group(1) if m else prompt).strip()
        out.append(Example(question, _string(row, "chosen", where), lang=lang, source=source, kind=RESPONSE))
    if not out:
        raise SlamError(f"{path or hub}: no rows" + (f" in languages {sorted(wanted)}" if wanted else ""))
    return out


# ---------------------------------------------------------------------------------------
# Multiple-choice questions (CommonsenseQA, X-CSQA)
# ---------------------------------------------------------------------------------------

# Row shapes: X-CSQA's ({question: {stem, choices}, answerKey}) and CommonsenseQA's on the hub
# ({question, choices: {label, text}, answerKey}).
_XCSQA_FIELDS = {"question": "question.stem", "choices": "question.choices", "answer": "answerKey"}
_CSQA_FIELDS = {"question": "question", "choices": "choices", "answer": "answerKey"}


def read_multiple_choice(
    path: str | Path | None = None,
    hub: str | None = None,
    benchmark: str = "xcsqa",
    lang: str = "en",
    source: str = "multiple-choice",
    field_map: dict[str, str] | None = None,
    **hub_kwargs,
) -> list[Example]:
    """Question + choices -> "The answer is (X).", rendered with ``benchmark``'s definition (its
    prompt), so that training shows a question exactly as ``slam eval`` does.

    Rows are X-CSQA's (``question.stem``, ``question.choices``, ``answerKey``) or CommonsenseQA's
    (``question``, ``choices``, ``answerKey``), told apart by the shape of ``question``;
    ``field_map`` (``question``, ``choices``, ``answer``; dotted for nested fields) names others.
    """
    from slam_align.data.benchmarks import get_field, parse_choice_gold, parse_choices
    from slam_align.data.definitions import get_definition

    definition = get_definition(benchmark)
    if definition.prompt is None:
        raise SlamError(
            f"benchmark '{benchmark}' is not a choice benchmark (answer_type {definition.answer_type})"
        )
    unknown = sorted(set(field_map or {}) - set(_CSQA_FIELDS))
    if unknown:
        raise SlamError(
            f"field_map: unknown field '{unknown[0]}'; expected some of: question, choices, answer"
        )
    lang = _check_lang(lang, str(path or hub))
    out = []
    for where, row in iter_rows(path, hub, **hub_kwargs):
        fields = {
            **(_XCSQA_FIELDS if isinstance(row.get("question"), dict) else _CSQA_FIELDS),
            **(field_map or {}),
        }
        question = get_field(row, fields["question"])
        if not isinstance(question, str) or not question.strip():
            raise SlamError(
                f"{where}: field '{fields['question']}' must be a non-empty string, got {question!r}"
            )
        try:
            choices = parse_choices(get_field(row, fields["choices"]))
        except SlamError as e:
            raise SlamError(f"{where}: field '{fields['choices']}': {e}") from None
        try:
            label = parse_choice_gold(get_field(row, fields["answer"]), choices)
        except SlamError as e:
            raise SlamError(f"{where}: field '{fields['answer']}': {e}") from None
        instruction = definition.prompt.render(question.strip(), choices)
        out.append(
            Example(instruction, definition.prompt.target(label), lang=lang, source=source, kind=RESPONSE)
        )
    if not out:
        raise SlamError(f"{path or hub}: no rows")
    return out


# ---------------------------------------------------------------------------------------
# FLORES-200 / FLORES+ parallel sentences
# ---------------------------------------------------------------------------------------

# FLORES-200 codes (the distributed files and facebook/flores); FLORES+ renamed Chinese cmn_Hans.
FLORES200_CODES = {
    "en": "eng_Latn", "zh": "zho_Hans", "de": "deu_Latn", "es": "spa_Latn", "fr": "fra_Latn",
    "it": "ita_Latn", "ja": "jpn_Jpan", "nl": "nld_Latn", "pl": "pol_Latn", "pt": "por_Latn",
    "ru": "rus_Cyrl", "ar": "arb_Arab", "vi": "vie_Latn", "hi": "hin_Deva", "sw": "swh_Latn",
    "ur": "urd_Arab", "bn": "ben_Beng", "th": "tha_Thai", "te": "tel_Telu",
}  # fmt: skip
FLORES_PLUS_CODES = {**FLORES200_CODES, "zh": "cmn_Hans"}
# hub id -> (text field, codes)
FLORES_HUBS = {
    "facebook/flores": ("sentence", FLORES200_CODES),
    "openlanguagedata/flores_plus": ("text", FLORES_PLUS_CODES),
}


def read_flores(
    path: str | Path | None = None,
    hub: str | None = None,
    langs: Iterable[str] | None = None,
    split: str = "dev",
    codes: dict[str, str] | None = None,
    text_field: str | None = None,
    **hub_kwargs,
) -> list[ParallelPair]:
    """FLORES sentences in ``langs`` paired with the English sentence of the same id.

    ``path``: the distributed FLORES-200 folder (``flores200_dataset``, holding
    ``<split>/<code>.<split>``, one sentence per line, line-aligned across languages) or its
    ``<split>`` folder. ``hub``: ``openlanguagedata/flores_plus`` (field ``text``) or
    ``facebook/flores`` (field ``sentence``), one config per language code, rows paired on
    ``id``. ``codes`` overrides the ISO -> FLORES code table (``{"zh": "zho_Hant"}``).
    """
    if (path is None) == (hub is None):
        raise SlamError("give exactly one of a local path or a hub id")
    field, table = FLORES_HUBS.get(hub or "", ("text", FLORES200_CODES))
    table = {**table, **(codes or {})}
    if langs is None:
        raise SlamError("flores: give 'langs' (the languages to pair with English)")
    wanted = [_check_lang(code, "langs") for code in langs if code != "en"]
    missing = [code for code in wanted if code not in table]
    if missing:
        raise SlamError(f"flores: no FLORES code known for '{missing[0]}'; add it under 'codes'")
    if path is not None:
        return _flores_local(Path(path), wanted, split, table)
    pairs = []
    english = _flores_hub(hub, table["en"], split, text_field or field, hub_kwargs)
    for lang in wanted:
        for key, (where, text) in _flores_hub(
            hub, table[lang], split, text_field or field, hub_kwargs
        ).items():
            if key not in english:
                raise SlamError(f"{where}: id {key!r} has no English sentence in config {table['en']}")
            pairs.append(ParallelPair(lang, text, english[key][1], where))
    return pairs


def _flores_hub(hub: str, code: str, split: str, field: str, hub_kwargs: dict) -> dict:
    """{id (or row number): (where, text)} of one FLORES config."""
    out = {}
    for i, (where, row) in enumerate(iter_hub_rows(hub, split=split, name=code, **hub_kwargs)):
        text = _string(row, field, where).strip()
        out[row.get("id", i)] = (where, text)
    return out


def _flores_local(path: Path, langs: list[str], split: str, table: dict[str, str]) -> list[ParallelPair]:
    folder = path / split if (path / split).is_dir() else path
    if not folder.is_dir() or not list(folder.glob(f"*.{split}")):
        raise SlamError(
            f"{path}: no FLORES-200 files (expected {split}/<code>.{split}, e.g. {split}/deu_Latn.{split})"
        )

    def file(lang: str) -> Path:
        for code in (table[lang], FLORES_PLUS_CODES.get(lang), FLORES200_CODES.get(lang)):
            if code and (folder / f"{code}.{split}").is_file():
                return folder / f"{code}.{split}"
        raise SlamError(f"{folder}: no {table[lang]}.{split} (FLORES file for '{lang}')")

    english = file("en")
    pairs = []
    for lang in langs:
        pairs += read_parallel_text(file(lang), english, lang)
    return pairs
