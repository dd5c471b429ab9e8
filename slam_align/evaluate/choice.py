"""Choice extraction: which option of a multiple-choice question a model's output picks.

``extract_choice(text, choices, lang, stop)`` returns the label (``"B"``) or ``None`` when
the output picks none (scored wrong). The rules, in order:

1. **Normalise**: Unicode NFKC (full-width ``（Ｂ）`` is ``(B)``), zero-width characters and
   Markdown emphasis (``**B**``) removed.
2. **Cut run-on text** at the first stop sequence (the template's and the generic ones of
   :mod:`slam_align.evaluate.extract`). A *question* marker ("Question:", "Frage:", ...)
   cuts only once something answer-like came before it: a model may restate the question
   (with its choices) before answering.
3. **Explicit answers first**, the last one in the text: a statement ("The answer is",
   "Die Antwort ist", "La réponse est", "答案是", "答えは", "Jibu ni", "Câu trả lời là",
   "الإجابة هي", "उत्तर है", ... in all 16 X-CSQA languages, tried whatever the question's
   language) or a label ("Answer:", "Antwort:", "答案：", "Ответ —", "उत्तर:", ...),
   followed by a choice label (``(B)``, ``B``, ``option B``; a bare upper-case letter not
   followed by a letter, so "a bigger brain" is not label A) or by a choice's text. A
   statement may name the choice's text anywhere in its sentence; a statement that starts
   with a negation ("The answer is not (A)") is skipped.
4. **Else the whole output**: an output that *is* a label (``B``, ``B.``, ``(B)``,
   ``B) bigger brain``), else the one option named in it, by label in brackets (``(B)``)
   or by its text (the longest when one text holds another: "bigger brain", not "brain").
   Two different options named: no answer.

Choice texts are compared after NFKC, case folding and dropping punctuation; texts in
scripts written without spaces (Chinese, Japanese, Thai) match anywhere, others only as
whole words. Not handled: an option named in another language than its choices' (an
English choice text for a German question), letters of another script (Cyrillic ``В``).

**The published protocol** (:func:`answer_is_choice`): SLAM's X-CSQA evaluator
(fmm170/SLAM ``evaluate_xcsqa-wyl/eval2statistic.py:133-170`` @ 62368092) takes the *first*
``The answer is (X).`` of the output (``re.compile(r"The answer is \\((.)\\)\\.")`` on the
stripped text; the gold letter comes from the same pattern) and counts X right only when it
is the gold letter (A-E; no match is read as "F", which is never right).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from slam_align.evaluate.extract import GENERIC_STOPS, is_question_marker, stop_sequences

# Versioned names of the two choice scorers, recorded in every metrics.json of a choice benchmark.
CHOICE_EXTRACTOR = "slam-choice@1"
ANSWER_IS = "answer-is@1"

Choices = Sequence[tuple[str, str]]

# ---------------------------------------------------------------------------------------
# Phrasings, 16 languages (en zh de es fr it ja nl pl pt ru ar vi hi sw ur)
# ---------------------------------------------------------------------------------------

# Statements: the choice may follow at once or be named (by its text) later in the sentence.
_STATEMENTS = [
    r"\banswer\s+(?:is|would\s+be|will\s+be|should\s+be|must\s+be)\b",  # en
    r"\b(?:correct|best|right)\s+(?:option|choice)\s+(?:is|would\s+be)\b",  # en
    r"\bI\s+(?:would\s+)?(?:choose|pick|select|go\s+with)\b",  # en
    r"\bantwort\s+(?:ist|lautet|wäre)\b",  # de
    r"\br[ée]ponse\s+(?:correcte\s+|finale\s+|juste\s+)?(?:est|serait)\b",  # fr
    r"\brespuesta\s+(?:correcta\s+|final\s+)?(?:es|ser[íi]a)\b",  # es
    r"\brisposta\s+(?:corretta\s+|giusta\s+|finale\s+)?(?:è|e'|sarebbe)(?!\w)",  # it
    r"\bresposta\s+(?:correta\s+|certa\s+|final\s+)?(?:é|seria)(?!\w)",  # pt
    r"\bantwoord\s+(?:is|luidt|zou\s+zijn)\b",  # nl
    r"\bodpowied[źz]\w*\s+(?:to|jest|brzmi)\b",  # pl
    r"ответ\s+(?:это|будет|является)",  # ru
    r"\bjibu\s+(?:sahihi\s+)?(?:ni|litakuwa)\b",  # sw
    r"(?:câu\s+trả\s+lời|đáp\s+án|trả\s+lời)\s+(?:đúng\s+)?(?:là|sẽ\s+là)",  # vi
    r"(?:الإجابة|الاجابة|الجواب)\s+(?:الصحيحة\s+|الصحيح\s+)?(?:هي|هو)",  # ar
    r"(?:उत्तर|जवाब)\s+(?:है|होगा)",  # hi
    r"جواب\s+(?:ہے|ہوگا)",  # ur
    r"(?:最终|正确|正確)?答案\s*(?:是|为|為|应该是|應該是|应为|應為)",  # zh
    r"(?:选择|選擇)",  # zh
    r"(?:答え|正解|解答)\s*(?:は|が)",  # ja
]
# Labels: count only when a choice follows right away ("Answer: B", "Ответ — B", "उत्तर (B) है").
_LABELS = [
    r"\b(?:final\s+|correct\s+)?answer\s*[:=]",  # en
    r"\bantwort\s*:",  # de
    r"\br[ée]ponse\s*:",  # fr
    r"\brespuesta\s*:",  # es
    r"\brisposta\s*:",  # it
    r"\bresposta\s*:",  # pt
    r"\bantwoord\s*:",  # nl
    r"\bodpowied[źz]\s*:",  # pl
    r"ответ\s*[:—–-]?",  # ru
    r"\bjibu\s*:",  # sw
    r"(?:câu\s+trả\s+lời|đáp\s+án|trả\s+lời)\s*:?",  # vi
    r"(?:الإجابة|الاجابة|الجواب)(?:\s+الصحيحة)?\s*:?",  # ar
    r"(?:उत्तर|जवाब)\s*:?",  # hi
    r"جواب\s*:?",  # ur
    r"答案\s*[:：]?",  # zh
    r"(?:选|選)",  # zh
    r"(?:答え|正解|解答)\s*[:：]",  # ja
]
_STATEMENT_RE = re.compile("|".join(f"(?:{p})" for p in _STATEMENTS), re.IGNORECASE)
_LABEL_RE = re.compile("|".join(f"(?:{p})" for p in _LABELS), re.IGNORECASE)
# Between a marker and the choice: spaces, colons, quotes, and "option" / "choice" words.
_OPTION_WORDS = (
    r"(?:the\s+)?(?:option|choice|letter|alternative)|option|opción|opcion|opzione|optie|opcja|opção|opcao|"
    r"alternativa|вариант|الخيار|lựa\s+chọn|phương\s+án|विकल्प|chaguo|آپشن|选项|選項|選択肢"
)
_FILLER = re.compile(rf"[\s:：*_\"'“”„«»‘’\-–—]*(?:(?:{_OPTION_WORDS})[\s:：]*)?", re.IGNORECASE)
# A statement that starts with a negation names a choice it rejects ("The answer is not (A)").
_NEGATION = re.compile(
    r"(?:not|nicht|kein\w*|pas|no|non|niet|nie|не|sio|không)\b|不是|不|ではない|नहीं|نہیں|ليس",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"\n|[。！？]|[.!?;](?=\s|$)")
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
# Scripts written without spaces between words: a choice text matches anywhere in them.
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def normalize_choice_text(text: str) -> str:
    """NFKC (full-width letters and brackets fold to ASCII), no zero-width characters, no
    Markdown emphasis (``**B**`` -> ``B``)."""
    text = unicodedata.normalize("NFKC", text.translate(_ZERO_WIDTH))
    return re.sub(r"\*\*|__|`", "", text)


def _words(text: str) -> str:
    """Case-folded text with punctuation and symbols as single spaces (combining marks kept, so
    Devanagari words stay whole)."""
    chars = [" " if unicodedata.category(c)[0] in "PSZC" else c for c in text.casefold()]
    return " ".join("".join(chars).split())


class _Options:
    """The choices of one question, ready for matching."""

    def __init__(self, choices: Choices):
        self.labels = [lab for lab, _ in choices]
        self.texts = {lab: _words(normalize_choice_text(text)) for lab, text in choices}
        alternation = "|".join(re.escape(lab) for lab in sorted(self.labels, key=len, reverse=True))
        # "(B)", "[b]", "（B）": any case in brackets; a bare label only as written, not followed by a letter
        self.bracketed = re.compile(rf"[(\[]\s*({alternation})\s*[)\]]", re.IGNORECASE)
        self.label_at = re.compile(rf"(?:[(\[]\s*({alternation})\s*[)\]]|({alternation})(?![^\W\d_]))")
        self.label_at_ci = re.compile(rf"[(\[]\s*({alternation})\s*[)\]]", re.IGNORECASE)

    def canonical(self, found: str) -> str | None:
        if found in self.labels:
            return found
        upper = [lab for lab in self.labels if lab.upper() == found.upper()]
        return upper[0] if len(upper) == 1 else None

    def label_match(self, text: str, pos: int = 0) -> tuple[str, int, bool] | None:
        """(label, end, bracketed) of a label at ``pos`` (after spaces, quotes, an "option" word)."""
        pos = _FILLER.match(text, pos).end()
        m = self.label_at.match(text, pos) or self.label_at_ci.match(text, pos)
        if m is None:
            return None
        label = self.canonical(m.group(1) or (m.group(2) if m.re is self.label_at else None))
        return None if label is None else (label, m.end(), m.group(1) is not None)

    def label_at_start(self, text: str) -> str | None:
        """The label ``text`` starts with, if any."""
        found = self.label_match(text)
        return found[0] if found else None

    def named(self, text: str) -> set[str]:
        """Labels whose choice text ``text`` names (the longest of texts that hold one another)."""
        words = _words(text)
        if not words:
            return set()
        spaced, unspaced = f" {words} ", words.replace(" ", "")
        found = {}
        for lab, t in self.texts.items():
            if not t:
                continue
            hit = t.replace(" ", "") in unspaced if _UNSPACED.search(t) else f" {t} " in spaced
            if hit:
                found[lab] = t
        return {lab for lab, t in found.items() if not any(t != o and t in o for o in found.values())}

    def text_at_start(self, text: str) -> str | None:
        """The label whose choice text ``text`` starts with (the longest such text)."""
        words = _words(text[_FILLER.match(text).end() :])
        best = None
        for lab, t in self.texts.items():
            if not t:
                continue
            starts = words.replace(" ", "").startswith(t.replace(" ", "")) if _UNSPACED.search(t) else (
                words == t or words.startswith(t + " ")
            )  # fmt: skip
            if starts and (best is None or len(t) > len(self.texts[best])):
                best = lab
        return best


# ---------------------------------------------------------------------------------------
# Run-on cutting
# ---------------------------------------------------------------------------------------


def _answered(prefix: str, options: _Options) -> bool:
    """Whether ``prefix`` already holds something answer-like (so a question marker after it
    starts an invented next example, not a restatement of the question)."""
    if not prefix.strip():
        return False
    if _STATEMENT_RE.search(prefix) or _LABEL_RE.search(prefix):
        return True
    return options.label_at_start(prefix) is not None or bool(options.bracketed.search(prefix))


def _cut_run_on(text: str, stop: Iterable[str] | None, options: _Options) -> str:
    markers = [
        normalize_choice_text(s) for s in (*(stop if stop is not None else stop_sequences()), *GENERIC_STOPS)
    ]
    cut = None
    for marker in dict.fromkeys(m for m in markers if m):
        conditional = is_question_marker(marker)
        i = text.find(marker)
        while 0 <= i and (cut is None or i < cut):
            if not conditional or _answered(text[:i], options):
                cut = i
                break
            i = text.find(marker, i + 1)
    return text if cut is None else text[:cut]


# ---------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------


def _sentence(text: str, pos: int) -> str:
    m = _SENTENCE_END.search(text, pos)
    window = text[pos : m.start() if m else len(text)]
    if not window.strip(" \t:：*") and m and text[m.start()] == "\n":  # "The answer is:\n(B) ..."
        return text[m.end() :].lstrip("\n").split("\n", 1)[0]
    return window


def _after_marker(text: str, end: int, statement: bool, options: _Options, rejected: set[str]) -> str | None:
    window = _sentence(text, end)
    label = options.label_at_start(window)
    if label is not None:
        return label
    label = options.text_at_start(window)
    if label is not None or not statement:
        return label
    named = options.named(window) | {
        options.canonical(m.group(1)) for m in options.bracketed.finditer(window)
    }
    named.discard(None)
    if _NEGATION.match(window[_FILLER.match(window).end() :]):
        rejected |= named  # "The answer is not (A)": never read as A
        return None
    return next(iter(named)) if len(named) == 1 else None


def _whole_output(text: str, options: _Options, rejected: set[str]) -> str | None:
    head = text.strip().lstrip("\"'“«")
    bracketed = {options.canonical(m.group(1)) for m in options.bracketed.finditer(text)} - {None}
    bare = re.sub(r"[\s.。!)(\[\]]", "", head)
    if bare and options.canonical(bare) is not None:  # the output is a label: "b", "B.", "(B)"
        return options.canonical(bare)
    found = options.label_match(head)
    if found is not None and bracketed <= {found[0]}:  # starts with a label, and lists no other one
        label, end, in_brackets = found
        rest = head[end:].lstrip()
        if rest[:1] in ("", *".)]。,;-–—"):  # "B.", "B) bigger brain", "B - ...", "B, because ..."
            return label
        if rest[0] in ":：":  # "B: bigger brain"; but "A: the question asks ..." is a Q/A prefix
            if options.text_at_start(rest[1:]) == label:
                return label
        elif in_brackets or options.text_at_start(rest) == label:
            return label  # "(B) because ...", "B bigger brain"
    named = (options.named(text) | bracketed) - rejected
    return next(iter(named)) if len(named) == 1 else None


def extract_choice(
    text: str | None, choices: Choices, lang: str | None = "en", stop: Iterable[str] | None = None
) -> str | None:
    """The label of the choice ``text`` picks among ``choices`` ((label, text) pairs), or ``None``.

    ``lang`` is accepted for symmetry with :func:`~slam_align.evaluate.extract.extract_answer`:
    the phrasings of every language are always tried. ``stop``: run-on markers (default:
    every registered template's, as ``slam score`` does)."""
    if not text or not choices:
        return None
    options = _Options(choices)
    text = _cut_run_on(normalize_choice_text(text), stop, options)
    marks = [(m.start(), m.end(), True) for m in _STATEMENT_RE.finditer(text)]
    marks += [(m.start(), m.end(), False) for m in _LABEL_RE.finditer(text)]
    rejected: set[str] = set()
    for _, end, statement in sorted(marks, reverse=True):
        label = _after_marker(text, end, statement, options, rejected)
        if label is not None:
            return label
    return _whole_output(text, options, rejected)


# ---------------------------------------------------------------------------------------
# The published protocol: SLAM's "The answer is (X)."
# ---------------------------------------------------------------------------------------

# eval2statistic.py:145 (prediction) and :158-159 (gold), restated, not copied.
_ANSWER_IS_RE = re.compile(r"The answer is \((.)\)\.")
PUBLISHED_LABELS = "ABCDE"


def answer_is_choice(text: str | None) -> str | None:
    """The letter of the first "The answer is (X)." in ``text`` (stripped), if it is A-E; else None."""
    if not text:
        return None
    m = _ANSWER_IS_RE.search(text.strip("\n").strip())
    return m.group(1) if m and m.group(1) in PUBLISHED_LABELS else None


def answer_is_correct(text: str | None, answer) -> bool:
    """The published verdict: the first "The answer is (X)." names the gold letter. ``answer``
    is the gold letter, or a reference output holding "The answer is (X)." (as SLAM's data)."""
    if not isinstance(answer, str) or not answer.strip():
        return False
    gold = answer.strip()
    if len(gold) != 1:
        m = _ANSWER_IS_RE.search(gold)
        gold = m.group(1) if m else ""
    pred = answer_is_choice(text)
    return pred is not None and pred == gold
