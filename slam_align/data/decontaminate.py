"""What "the same question" means, and which training rows are test questions.

:func:`normalize_text` makes case, punctuation, spacing and digit script irrelevant;
:func:`test_question_index` indexes every test question (every language of MGSM, MSVAMP,
GSM8K test, X-CSQA validation and test, and each problem's English question) so that
``slam data build`` can drop a training row whose question is one of them
(:func:`example_questions`). A test set is a benchmark (every split of its definition) or
``BENCHMARK:SPLIT`` (one split: ``xcsqa:test``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from slam_align.data.training import ALIGNMENT, Example
from slam_align.errors import SlamError

TEST_SETS = ("mgsm", "msvamp", "gsm8k")  # the default of slam data build --decontaminate

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


def parse_test_set(entry: str) -> tuple[str, list[str]]:
    """``"xcsqa"`` -> ("xcsqa", every split); ``"xcsqa:test"`` -> ("xcsqa", ["test"])."""
    from slam_align.data.benchmarks import BENCHMARKS
    from slam_align.data.definitions import get_definition

    name, _, split = str(entry).partition(":")
    try:
        definition = get_definition(name.strip())
    except SlamError:
        raise SlamError(
            f"decontaminate: unknown test set '{entry}'; expected some of: {', '.join(BENCHMARKS)} "
            "(a benchmark: all its splits; or BENCHMARK:SPLIT)"
        ) from None
    if split and split not in definition.splits:
        raise SlamError(
            f"decontaminate: '{entry}': {definition.name} has no split '{split}'; "
            f"expected one of: {', '.join(definition.splits)}"
        )
    return definition.name, [split] if split else list(definition.splits)


def test_question_index(names: Iterable[str], data_dir: str | Path | None) -> dict[str, str]:
    """normalised question -> test set, over every language of each benchmark (and its English question).

    A choice benchmark's questions are shown with their choices: each line of them (the
    question on its own) is indexed too."""
    from slam_align.data.benchmarks import load_benchmark

    index: dict[str, str] = {}
    for entry in names:
        name, splits = parse_test_set(entry)
        for split in splits:
            try:
                problems = load_benchmark(name, langs="all", data_dir=data_dir, split=split)
            except SlamError as e:  # name the build's own flag in the hint
                raise SlamError(f"decontaminate: {str(e).replace('--data-dir', '--test-data-dir')}") from None
            for p in problems:
                for q in (p.question, p.question_en):
                    if not q:
                        continue
                    index.setdefault(normalize_text(q), entry)
                    if p.answer_type == "choice":
                        for line in q.splitlines():
                            if normalize_text(line):
                                index.setdefault(normalize_text(line), entry)
    return index
