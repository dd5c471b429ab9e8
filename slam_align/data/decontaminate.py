"""What "the same question" means, and which training rows are test questions.

:func:`normalize_text` makes case, punctuation, spacing and digit script irrelevant;
:func:`test_question_index` indexes every test question (every language of MGSM, MSVAMP,
GSM8K test, and each problem's English question) so that ``slam data build`` can drop a
training row whose question is one of them (:func:`example_questions`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from slam_align.data.training import ALIGNMENT, Example
from slam_align.errors import SlamError

TEST_SETS = ("mgsm", "msvamp", "gsm8k")

_WORD = re.compile(r"\w+")
_TRANSLATE_PREFIX = re.compile(r"^Translate the following sentences from [^.]+? to [^.]+?\.\s*")


def normalize_text(text: str) -> str:
    """Case, punctuation, spacing and digit script do not matter: ``"on monday . she"`` equals
    ``"On Monday. She"`` and ``১৮`` equals ``18``."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():  # native digits (Bengali, Thai, ...) -> ASCII
        text = "".join(
            str(unicodedata.digit(ch)) if ch.isdigit() and unicodedata.digit(ch, None) is not None else ch
            for ch in text
        )
    return " ".join(_WORD.findall(text.casefold()))


def example_questions(ex: Example) -> set[str]:
    """Normalised texts of ``ex`` that are questions: the instruction (with QAlign's translation
    prefix removed), its lines, the input, and for alignment rows the English question (output)."""
    texts = [ex.instruction, _TRANSLATE_PREFIX.sub("", ex.instruction), ex.input]
    texts += ex.instruction.splitlines()
    if ex.kind == ALIGNMENT:
        texts.append(ex.output)
    return {n for n in map(normalize_text, texts) if n}


def test_question_index(names: Iterable[str], data_dir: str | Path | None) -> dict[str, str]:
    """normalised question -> test set, over every language of each benchmark (and its English question)."""
    from slam_align.data.benchmarks import load_benchmark

    index: dict[str, str] = {}
    for name in names:
        if name not in TEST_SETS:
            raise SlamError(
                f"decontaminate: unknown test set '{name}'; expected some of: {', '.join(TEST_SETS)}"
            )
        try:
            problems = load_benchmark(name, langs="all", data_dir=data_dir)
        except SlamError as e:  # name the build's own flag in the hint
            raise SlamError(f"decontaminate: {str(e).replace('--data-dir', '--test-data-dir')}") from None
        for p in problems:
            for q in (p.question, p.question_en):
                if q:
                    index.setdefault(normalize_text(q), name)
    return index
