"""Answer extraction: the one function every score in this project goes through.

``extract_answer(text, lang)`` turns a model's free-text solution into a number, or
``None`` when there is no number (scored wrong, never as 0). The rules, in order:

1. **Normalise**: full-width digits and symbols (``１２``, ``＄``, ``：``) become ASCII;
   every Unicode decimal digit (Bengali ``১৮``, Thai ``๑๘``, Devanagari, Telugu...)
   becomes its ASCII digit; ``−`` (U+2212) becomes ``-``; non-breaking / thin spaces
   become a thousands-group space; LaTeX ``\\$``, ``\\%``, ``{,}``, ``\\,`` and
   ``\\frac{a}{b}`` are simplified.
2. **Cut run-on text** at the first stop sequence (the prompt template's ``.stop`` plus
   generic markers such as ``\\n\\nQuestion:``, ``### Instruction``, ``\\nFrage:``,
   ``\\n问题:``): numbers in an invented next example never count. A *question* marker
   ("Question:", "Frage:", "问题:", ...) with no digit before it is the model restating the
   question before solving it, not a next example: it does not cut.
3. **Prefer an explicit final answer**: the last ``\\boxed{...}`` or "the answer is"
   statement (English and native phrasings: "Die Antwort lautet", "La réponse est",
   "La respuesta es", "Ответ —", "答案是", "答えは", "Jibu ni", "คำตอบคือ",
   "উত্তর হল", "సమాధానం", MetaMath's "The answer is: N"...; the phrasings of every
   language are always tried, since models often answer in another language than the
   question's). Statements ("answer is") take the first number of their sentence (the
   number after the last ``=`` when the sentence is an equation, and the result when the
   number starts a calculation that the sentence goes on to finish: "the answer is 3 times
   6, which is 18" is 18); labels ("Answer:",
   "Ответ:", "答案：", GSM8K's "#### N") count only when a number follows right away.
4. **Else the last number** of the (cut) text.

Numbers follow the conventions of ``lang`` (``syn-xx`` is treated as ``xx``):

* ``1.234,56`` / ``1,234.56`` (both marks): the last mark is the decimal one (any language).
* ``1,234,567`` / ``1.234.567`` (one mark, repeated, 3-digit groups; also Indian
  ``1,00,000``): thousands grouping (any language).
* ``19,50`` / ``1,5`` (comma, not followed by exactly 3 digits): decimal comma in
  comma-decimal languages (de fr es ru ...); elsewhere the comma separates two numbers.
* ``2,125`` (comma + exactly 3 digits): thousands in every language. In German this
  is strictly 2.125, but grade-school answers almost never have three decimals and
  models write English-style numbers for any question language, so thousands is the
  far likelier reading.
* ``80.000`` (dot + exactly 3 digits): thousands in languages that group with a dot
  (de es it pt nl ...), a decimal point elsewhere (``1.500`` in English is 1.5).
* ``0.5``, ``12.50`` (dot, not followed by exactly 3 digits): decimal point everywhere.
* ``80 000``: a plain space groups thousands in fr es ru sw th (and other space-grouping
  languages); a no-break or thin space does in every language. The first group must
  have 1-3 digits and the next groups exactly 3, else the parts are separate numbers.
* A ``-`` right before a digit and not after a letter, digit or bracket is a minus sign
  (``5-3`` is 5 and 3; ``Ответ — 11`` is 11: a dash is not a minus sign).
* Currency and percent signs are ignored (``$18``, ``19,50 €``, ``25%``); a number
  followed by 万/萬 or 亿/億 is multiplied by 10^4 / 10^8.
* Not handled (gives the last digit-written number, or ``None``): numbers in words
  ("twelve", "十二"), mixed fractions.

**The published protocol** (:func:`last_number`, :func:`last_number_correct`): the score
QAlign and MathOctopus publish, and SLAM reports through MathOctopus' code, kept beside
ours so that a number can be put next to a published one. It reads the *last number of
the whole output* after removing digit-group commas, with none of the rules above; see
:func:`last_number` for the exact behaviour and the lines of the peers' code it follows.

``EXTRACTOR`` and ``LAST_NUMBER`` name the two scorers with a version; every metrics file
records them. Bump a version whenever a change can alter a score.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

# Versioned names of the two scorers, recorded in every metrics.json. v2: calculations
# finished after an answer statement, question restatements before the solution.
EXTRACTOR = "slam-extract@2"
LAST_NUMBER = "last-number@1"

# ---------------------------------------------------------------------------------------
# Number conventions per language
# ---------------------------------------------------------------------------------------

COMMA_DECIMAL_LANGS = frozenset(
    "de fr es ru it pt nl pl tr id da sv nb no fi cs sk uk ro hu el vi bg hr sl lt lv et ca".split()
)
DOT_THOUSANDS_LANGS = frozenset("de es it pt nl tr id da el vi ro hr sl ca".split())
SPACE_THOUSANDS_LANGS = frozenset("fr es ru sw th pl sv nb no fi cs sk uk hu bg lt lv et".split())


@dataclass(frozen=True)
class NumberConventions:
    lang: str
    decimal_comma: bool  # "19,50" is 19.5
    dot_thousands: bool  # "80.000" is 80000
    space_thousands: bool  # "80 000" is 80000 (plain space)


def base_language(lang: str | None) -> str:
    """'syn-de' -> 'de', 'pt-BR' -> 'pt', None -> 'en'."""
    code = (lang or "en").strip().lower()
    if code.startswith("syn-"):
        code = code[4:]
    return re.split(r"[-_]", code, maxsplit=1)[0] or "en"


def conventions(lang: str | None) -> NumberConventions:
    code = base_language(lang)
    return NumberConventions(
        lang=code,
        decimal_comma=code in COMMA_DECIMAL_LANGS,
        dot_thousands=code in DOT_THOUSANDS_LANGS,
        space_thousands=code in SPACE_THOUSANDS_LANGS,
    )


# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------

GROUP_SPACE = "\u202f"  # internal marker: a space that can only be a thousands separator
_NB_SPACES = "\u00a0\u202f\u2009\u2007\u200a"
_MINUS_SIGNS = "\u2212\u2012\ufe63\uff0d"
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
# Full-width forms we fold to ASCII. The full-width comma is kept (in CJK text it ends a
# clause) unless it sits between two digits.
_FULLWIDTH_KEEP = {"\uff0c"}


def _fold_char(ch: str) -> str:
    code = ord(ch)
    if ch in _NB_SPACES:
        return GROUP_SPACE
    if ch in _MINUS_SIGNS:
        return "-"
    if code < 128:
        return ch
    if ch == "\u3000":
        return " "
    if 0xFF01 <= code <= 0xFF5E and ch not in _FULLWIDTH_KEEP:
        ch = chr(code - 0xFEE0)
        return ch
    digit = unicodedata.decimal(ch, None)
    if digit is not None:  # Bengali, Thai, Devanagari, Telugu, Arabic-Indic... digits
        return str(digit)
    return ch


_LATEX_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")


def normalize(text: str) -> str:
    """Fold digits, minus signs, spaces and a little LaTeX to the forms the parser reads."""
    text = text.translate(_ZERO_WIDTH)
    text = "".join(_fold_char(c) for c in text)
    text = re.sub(r"(?<=\d)\uff0c(?=\d)", ",", text)  # "１，２００": a full-width comma between digits groups
    text = text.replace("{,}", ",").replace("\\,", GROUP_SPACE).replace("\\!", "")
    text = text.replace("\\$", "$").replace("\\%", "%")
    text = _LATEX_FRAC.sub(r"(\1)/(\2)", text)
    return text


# ---------------------------------------------------------------------------------------
# Run-on cutting
# ---------------------------------------------------------------------------------------

# The model starting an invented next example: everything from here on is not its answer.
# Native question prefixes are those of MGSM's few-shot exemplars.
GENERIC_STOPS: tuple[str, ...] = (
    "### Instruction",
    "\n\n### ",
    "### Response",
    "Below is an instruction that describes a task",
    "\nQuestion:",
    "\nQuestion :",
    "\nQ:",
    "\nInstruction:",
    "\nHuman:",
    "\nUser:",
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end|>",
    "</s>",
    "<end_of_turn>",
    "\nFrage:",
    "\nPregunta:",
    "\nЗадача:",
    "\nВопрос:",
    "\nSwali:",
    "\nโจทย์:",
    "\nপ্রশ্ন:",
    "\nప్రశ్న:",
    "\n问题:",
    "\n問題:",
)


# The words of the question markers above (and of templates' "\nQuestion:"-style stops). A
# model often restates the question under such a marker before solving it: only a marker
# after which something was already worked out (a digit before it) starts a next example.
QUESTION_WORDS = frozenset("Question Q Frage Pregunta Задача Вопрос Swali โจทย์ প্রশ্ন ప్రశ్న 问题 問題".split())


def is_question_marker(marker: str) -> bool:
    """``"\\nQuestion:"``, ``"\\n\\nFrage:"``, ``"\\n问题:"``...: a marker that names a question."""
    return marker.strip().rstrip(":：").strip() in QUESTION_WORDS


def stop_sequences(template=None) -> tuple[str, ...]:
    """Where a generation is cut: a template's own markers and the generic run-on ones.

    Without a template, every registered template's markers: ``slam score`` may not know
    which template produced a file, and must extract exactly what ``slam eval`` would.
    """
    from slam_align.data.prompts import PROMPTS

    own = template.stop if template is not None else [s for t in PROMPTS.values() for s in t.stop]
    return tuple(dict.fromkeys((*own, *GENERIC_STOPS)))


def run_on_start(text: str, stop: Iterable[str]) -> int | None:
    """Where the run-on begins in ``text``: the first marker of ``stop`` that counts, or ``None``.

    Any marker counts, except a question marker (:func:`is_question_marker`) with no digit
    before it: that is the model restating the question, and the cut comes at a later marker.
    Works on raw or normalised text alike (the caller passes markers of the same form).
    """
    first_digit = next((i for i, c in enumerate(text) if c.isdecimal()), len(text))
    cut = None
    for marker in stop:
        if not marker:
            continue
        conditional = is_question_marker(marker)
        i = text.find(marker)
        while 0 <= i and (cut is None or i < cut):
            if not conditional or i > first_digit:
                cut = i
                break
            i = text.find(marker, i + 1)
    return cut


def cut_run_on(text: str, stop: Iterable[str] | None = None) -> str:
    """(Normalised) ``text`` up to where its run-on begins: ``stop`` plus the generic markers
    (default: :func:`stop_sequences` of every template), see :func:`run_on_start`."""
    markers = [normalize(s) for s in (*(stop if stop is not None else stop_sequences()), *GENERIC_STOPS) if s]
    cut = run_on_start(text, dict.fromkeys(markers))
    return text if cut is None else text[:cut]


def cut_at_stop(text: str, stop: Iterable[str] | None) -> str:
    """Raw ``text`` up to where its run-on begins (no normalisation): what generation keeps."""
    cut = run_on_start(text, stop or ())
    return text if cut is None else text[:cut]


# ---------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------

_SIGN = r"(?<![\w)\]])-"
_MULTIPLIERS = {"万": 1e4, "萬": 1e4, "亿": 1e8, "億": 1e8}


def _number_re(space_groups: bool) -> re.Pattern:
    gs = f"[ {GROUP_SPACE}]" if space_groups else GROUP_SPACE
    body = rf"\d+(?:[.,]\d+|{gs}\d{{3}}(?!\d))*"
    return re.compile(rf"(?P<sign>{_SIGN})?(?P<body>{body})(?P<mult>[万萬亿億])?")


_NUMBER_RE = {True: _number_re(True), False: _number_re(False)}


def _is_grouping(groups: list[str], allow_indian: bool = True) -> bool:
    """'1', '234', '567' (or Indian '1','00','000') is a valid thousands grouping."""
    if not 1 <= len(groups[0]) <= 3 or len(groups) < 2:
        return False
    if all(len(g) == 3 for g in groups[1:]):
        return True
    return allow_indian and len(groups[-1]) == 3 and all(len(g) == 2 for g in groups[1:-1])


def _parse_plain(s: str, conv: NumberConventions) -> list[float]:
    """A digit string with ``.``/``,`` marks (no spaces) -> one number, or several if it is a list."""
    marks = re.findall(r"[.,]", s)
    groups = re.split(r"[.,]", s)
    if not marks:
        return [float(s)]
    kinds = set(marks)
    if len(kinds) == 2:
        dec = marks[-1]
        if marks.count(dec) == 1 and _is_grouping(groups[:-1], allow_indian=True):
            return [float("".join(groups[:-1]) + "." + groups[-1])]
        return [float(g) for g in groups]
    mark = marks[0]
    if len(marks) > 1:
        if _is_grouping(groups):
            return [float("".join(groups))]
        return [float(g) for g in groups]
    head, tail = groups
    if mark == ".":
        thousands = len(tail) == 3 and conv.dot_thousands and head != "0" and len(head) <= 3
        return [float(head + tail)] if thousands else [float(f"{head}.{tail}")]
    # a single comma
    if len(tail) == 3 and len(head) <= 3 and head != "0":
        return [float(head + tail)]
    if conv.decimal_comma:
        return [float(f"{head}.{tail}")]
    return [float(head), float(tail)]


def _parse_body(body: str, conv: NumberConventions) -> list[float]:
    chunks = re.split(f"[ {GROUP_SPACE}]", body)
    if len(chunks) == 1:
        return _parse_plain(body, conv)
    heads = chunks[:-1]
    last_digits = re.match(r"\d+", chunks[-1]).group()
    last_rest = chunks[-1][len(last_digits) :]
    valid = (
        all(h.isdigit() for h in heads)
        and _is_grouping([*heads, last_digits], allow_indian=False)
        and re.fullmatch(r"(?:[.,]\d+)?", last_rest) is not None
    )
    if valid:  # the space groups thousands, so a remaining mark is the decimal one
        value = "".join(heads) + last_digits + ("." + last_rest[1:] if last_rest else "")
        return [float(value)]
    out: list[float] = []
    for chunk in chunks:
        out += _parse_plain(chunk, conv)
    return out


@dataclass(frozen=True)
class Number:
    value: float
    start: int
    end: int


def find_numbers(text: str, lang: str | None = "en") -> list[Number]:
    """Every number in (already normalised) ``text``, in order, per ``lang``'s conventions."""
    conv = conventions(lang)
    out: list[Number] = []
    for m in _NUMBER_RE[conv.space_thousands].finditer(text):
        values = _parse_body(m.group("body"), conv)
        if m.group("sign"):
            values[0] = -values[0]
        if m.group("mult"):
            values[-1] *= _MULTIPLIERS[m.group("mult")]
        out += [Number(v, m.start(), m.end()) for v in values]
    return out


_FRACTION_TAIL = re.compile(r"\)?\s*/\s*\(?")


def _first_number(text: str, lang: str | None, fractions: bool = True) -> float | None:
    nums = find_numbers(text, lang)
    if not nums:
        return None
    first = nums[0]
    if fractions and len(nums) > 1:
        between = text[first.end : nums[1].start]
        if _FRACTION_TAIL.fullmatch(between) and nums[1].value != 0:
            return first.value / nums[1].value
    return first.value


# ---------------------------------------------------------------------------------------
# Final-answer statements
# ---------------------------------------------------------------------------------------

# "Statements" may put words before the number ("The answer is that she has 18 ...").
_STATEMENTS = [
    r"answer\s+(?:is|would\s+be|will\s+be|should\s+be)\b",  # en, MetaMath "The answer is: N"
    r"antwort\s+(?:ist|lautet|wäre)\b",  # de
    r"r[ée]ponse\s+(?:finale\s+)?(?:est|serait)\b",  # fr
    r"respuesta\s+(?:final\s+)?(?:es|ser[íi]a)\b",  # es
    r"ответ\s+(?:равен|равна|будет|составляет|это)",  # ru
    r"jibu\s+(?:ni|la\s+mwisho\s+ni)\b",  # sw
    r"คำตอบ(?:สุดท้าย)?\s*(?:คือ|ได้แก่)",  # th
    r"উত্তর\s*(?:হল|হলো|হবে|হচ্ছে)",  # bn
    r"(?:最终)?答案\s*(?:是|为|為|應為|应为)",  # zh
    r"答え\s*(?:は|が)",  # ja
]
# "Labels" count only when the number follows right away ("Answer: 18", "Ответ — 11"):
# "Step-by-Step Answer: Roger started with 5 balls" is not a final answer.
_LABELS = [
    r"####",  # GSM8K's own solution format: "#### 72"
    r"(?:final\s+)?answer\s*[:=]",
    r"antwort\s*:",
    r"r[ée]ponse\s*:",
    r"respuesta\s*:",
    r"ответ\s*[:—–-]?",
    r"jibu\s*:",
    r"คำตอบ\s*:?",
    r"উত্তর\s*:",
    r"(?:సమాధానం|జవాబు)\s*:?",
    r"答案\s*:",
    r"答え\s*:",
]
_STATEMENT_RE = re.compile("|".join(f"(?:{p})" for p in _STATEMENTS), re.IGNORECASE)
_LABEL_RE = re.compile("|".join(f"(?:{p})" for p in _LABELS), re.IGNORECASE)
_LABEL_FILLER = re.compile(r"[\s:*_$€£¥₹#\\(\[{~≈]*")
_SENTENCE_END = re.compile(r"\n|[。।｡]|[.!?;](?=\s|$)")


def _sentence_after(text: str, pos: int) -> str:
    """From ``pos`` to the end of the sentence; the next line when the rest of this one is empty."""
    m = _SENTENCE_END.search(text, pos)
    window = text[pos : m.start() if m else len(text)]
    if not window.strip(" \t:*") and m and text[m.start()] == "\n":
        nxt = text[m.end() :].lstrip("\n")
        return nxt.split("\n", 1)[0]
    return window


# An arithmetic operator between two numbers ("3 times 6", "3 × 6", "3 mal 6", "3 乘以 6"):
# the statement's first number starts a calculation. "/" is not one: "3/4" is a fraction.
_OPERATORS = [
    r"[+*×x·÷-]",
    r"times|multiplied\s+by|plus|minus|divided\s+by",  # en
    r"mal|geteilt\s+durch",  # de
    r"fois|multipli[ée]e?\s+par|moins|divis[ée]e?\s+par",  # fr
    r"por|veces|m[áa]s|menos|dividido\s+(?:por|entre)",  # es
    r"умножить\s+на|умноженное\s+на|плюс|минус|разделить\s+на",  # ru
    r"mara|jumlisha|kutoa|toa|gawanya\s+kwa",  # sw
    r"乘以|乘|加上|加|减去|减|除以",  # zh
    r"かける|掛ける|たす|足す|ひく|引く|わる|割る",  # ja
    r"คูณ(?:ด้วย)?|บวก|ลบ|หาร(?:ด้วย)?",  # th
    r"গুণ|যোগ|বিয়োগ|ভাগ",  # bn
]
_OPERATOR_GAP = re.compile(rf"\s*(?:{'|'.join(_OPERATORS)})\s*", re.IGNORECASE)
# What links a finished calculation to its result ("3 times 6, which is 18"; "3 乘以 6，等于 18").
_RESULT_LINKS = [
    r"=|≈|→",
    r"\b(?:is|are|equals?|gives|makes|that's|i\.e\.)\b",  # en
    r"\b(?:ist|sind|ergibt|gleich|also)\b",  # de
    r"\b(?:est|font|fait|égale?|soit|donc)\b",  # fr
    r"\b(?:es|son|da|igual\s+a)\b",  # es
    r"(?:это|равно|будет|получается|то\s+есть)",  # ru
    r"\b(?:ni|sawa\s+na)\b",  # sw
    r"等于|等於|得|是|为|為|即",  # zh
    r"で|は|となり|になり",  # ja
    r"เท่ากับ|คือ|ได้",  # th
    r"হয়|সমান|যা",  # bn
]
_RESULT_LINK = re.compile("|".join(f"(?:{p})" for p in _RESULT_LINKS), re.IGNORECASE)


def _calculation_result(window: str, lang: str | None) -> float | None:
    """The result of a calculation that starts at the window's first number, if the sentence
    gives it: "3 times 6, which is 18" -> 18; "18 dollars, which is 3 times 6" -> None."""
    nums = find_numbers(window, lang)
    last = 0
    while last + 1 < len(nums) and _OPERATOR_GAP.fullmatch(window[nums[last].end : nums[last + 1].start]):
        last += 1
    if last == 0 or last + 1 >= len(nums):
        return None
    link = window[nums[last].end : nums[last + 1].start]
    return nums[last + 1].value if _RESULT_LINK.search(link) else None


def _statement_value(text: str, pos: int, lang: str | None) -> float | None:
    window = _sentence_after(text, pos)
    if "=" in window:
        v = _first_number(window.rsplit("=", 1)[1], lang)
        if v is not None:
            return v
    result = _calculation_result(window, lang)
    return result if result is not None else _first_number(window, lang)


def _label_value(text: str, pos: int, lang: str | None) -> float | None:
    window = _sentence_after(text, pos)
    filler = _LABEL_FILLER.match(window)
    rest = window[filler.end() :]
    if not rest[:1].isdigit() and not (rest[:1] == "-" and rest[1:2].isdigit()):
        return None
    return _statement_value(window, filler.end(), lang)


def _boxed_contents(text: str) -> list[tuple[int, str]]:
    """(position, content) of every ``\\boxed{...}`` / ``\\fbox{...}``, braces balanced."""
    out = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        out.append((m.start(), text[m.end() : i - 1 if depth == 0 else i]))
    return out


def _final_answer_candidates(text: str) -> list[tuple[int, str, int]]:
    """(position, kind, value start) of every explicit final-answer marker, in text order."""
    cands = [(p, "boxed", p) for p, _ in _boxed_contents(text)]
    cands += [(m.start(), "statement", m.end()) for m in _STATEMENT_RE.finditer(text)]
    cands += [(m.start(), "label", m.end()) for m in _LABEL_RE.finditer(text)]
    return sorted(cands)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def extract_answer(
    text: str | None, lang: str | None = "en", stop: Iterable[str] | None = None
) -> float | None:
    """The model's final numeric answer in ``text``, or ``None`` if it gives none (see module doc)."""
    if not text:
        return None
    text = cut_run_on(normalize(text), stop)
    boxed = dict(_boxed_contents(text))
    for pos, kind, start in reversed(_final_answer_candidates(text)):
        if kind == "boxed":
            value = _first_number(boxed[pos], lang)
        elif kind == "statement":
            value = _statement_value(text, start, lang)
        else:
            value = _label_value(text, start, lang)
        if value is not None:
            return value
    nums = find_numbers(text, lang)
    return nums[-1].value if nums else None


def answers_match(
    pred: float | None, gold: float | None, rel_tol: float = 1e-6, abs_tol: float = 1e-4
) -> bool:
    """``pred`` equals ``gold`` up to a small tolerance (``7`` == ``7.0``); ``None`` never matches."""
    if pred is None or gold is None:
        return False
    try:
        pred, gold = float(pred), float(gold)
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(pred) and math.isfinite(gold)):
        return False
    return math.isclose(pred, gold, rel_tol=rel_tol, abs_tol=abs_tol)


# ---------------------------------------------------------------------------------------
# The published protocol: the last number of the whole output
# ---------------------------------------------------------------------------------------

# Behaviour of the peers' ``extract_last_num`` (the same function in all four scripts:
# QAlign evaluate/scripts/mgsm_test.py:202-209 and svamp_test.py:183-190 @ a65ee638;
# MathOctopus step1_supervised_finetuning/generate_and_eval.py:198-205 and
# svamp_test.py:183-190 @ 4d385db6), restated here, not copied:
_DIGIT_COMMA_DIGIT = re.compile(r"(\d),(\d)")  # matches do not overlap: "1,2,3" -> "12,3"
_PEER_NUMBER = re.compile(r"\d+(?:\.\d+)?")  # no sign, no leading or trailing dot; \d is Unicode
PEER_TOLERANCE = 1e-3  # generate_and_eval.py:98, mgsm_test.py:100: abs(gold - pred) < 1e-3


def last_number(text: str | None) -> float | None:
    """The last number of ``text`` as QAlign and MathOctopus read it, or ``None`` without one.

    1. every ``<digit>,<digit>`` is replaced by the two digits, scanning left to right
       without overlap (``1,234,567`` -> ``1234567``, ``1,2,3`` -> ``12,3``);
    2. numbers are runs of (any script's) decimal digits, optionally followed by ``.`` and
       more digits: ``-5`` is 5, ``.5`` is 5, ``18.`` is 18, ``১৮`` is 18, ``1.234.567`` is 567;
    3. the last one, as a float.

    Nothing else: no stop sequence, no answer statement, no language convention. The
    published function returns 0.0 where this returns ``None``.
    """
    if not text:
        return None
    found = _PEER_NUMBER.findall(_DIGIT_COMMA_DIGIT.sub(r"\1\2", text))
    return float(found[-1]) if found else None


def peer_gold(answer) -> float | None:
    """A gold answer as the peers read it: their extractor on the answer as written
    (``"2,125"`` -> 2125, ``"8.0"`` -> 8, a number -> its ``str``; no sign)."""
    if answer is None or isinstance(answer, bool):
        return None
    return last_number(answer if isinstance(answer, str) else str(answer))


def last_number_correct(text: str | None, answer) -> bool:
    """The published verdict: ``|gold - last number| < 1e-3``; an output with no number is wrong.

    (The published function reads "no number" as 0.0, so it would count such an output
    right for a gold answer of 0; no MGSM or MSVAMP gold is 0, so the verdicts agree on both.)
    """
    pred, gold = last_number(text), peer_gold(answer)
    if pred is None or gold is None or not (math.isfinite(pred) and math.isfinite(gold)):
        return False
    return abs(gold - pred) < PEER_TOLERANCE
