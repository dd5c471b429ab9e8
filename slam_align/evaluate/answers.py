"""Answer types: the one table that says how a benchmark's answers are read and compared.

A benchmark definition names its answer type (``number`` or ``choice``); a predictions row
carries it as ``answer_type`` (rows without the field are ``number``, as every row written
before choice benchmarks existed). :func:`~slam_align.evaluate.score.score_row`, ``slam eval``
and the metrics only ask this table:

================  ==========================================  ===========================================
                  ``number`` (MGSM, MSVAMP, GSM8K)            ``choice`` (X-CSQA)
================  ==========================================  ===========================================
gold              ``parse_gold``: ``"2,125"`` -> 2125.0        ``parse_choice_gold``: one of the labels
extract           ``extract_answer``: a number or None         ``extract_choice``: a label or None
match             ``answers_match``: equal up to 1e-4          the same label
published         ``last_number`` (QAlign / MathOctopus)       ``answer_is_choice`` (SLAM's X-CSQA script)
================  ==========================================  ===========================================

The published protocol's verdict is stored under the same keys for both types
(``extracted_last_number``, ``correct_last_number``; metrics ``accuracy_last_number``...), so
tables, ``slam compare --metric last-number`` and checkpoint sweeps treat them alike; the
metrics' ``scoring`` record says which rule made them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from slam_align.data.benchmarks import parse_choice_gold, parse_choices, parse_gold
from slam_align.data.definitions import find_definition
from slam_align.errors import SlamError
from slam_align.evaluate.choice import (
    ANSWER_IS,
    CHOICE_EXTRACTOR,
    answer_is_choice,
    answer_is_correct,
    extract_choice,
)
from slam_align.evaluate.extract import (
    EXTRACTOR,
    LAST_NUMBER,
    PEER_TOLERANCE,
    answers_match,
    extract_answer,
    last_number,
    last_number_correct,
)


@dataclass(frozen=True)
class AnswerType:
    name: str
    check_row: Callable[[dict], Any]  # the fields a predictions row of this type needs besides answer
    parse_gold: Callable[[Any, dict], Any]  # (answer as written, row) -> gold; SlamError when invalid
    extract: Callable[
        [str | None, dict, Sequence[str] | None], Any
    ]  # (prediction, row, stop) -> answer | None
    match: Callable[[Any, Any], bool]  # (extracted, gold) -> right?
    published_extract: Callable[[str | None], Any]  # the published protocol's reading of the output
    published_correct: Callable[[str | None, Any], bool]  # (prediction, answer as written) -> right?
    published_name: str  # how tables name the published protocol's row
    scoring: dict  # what metrics.json records under "scoring"


def row_choices(row: dict) -> tuple[tuple[str, str], ...]:
    """The ``choices`` of a predictions row (``{label: text}`` or a list of ``{label, text}``)."""
    if row.get("choices") is None:
        raise SlamError("missing field 'choices' (a choice question's options)")
    try:
        return parse_choices(row["choices"])
    except SlamError as e:
        raise SlamError(f"field 'choices': {e}") from None


NUMBER = AnswerType(
    name="number",
    check_row=lambda row: None,
    parse_gold=lambda answer, row: parse_gold(answer),
    extract=lambda prediction, row, stop: extract_answer(prediction, row["lang"], stop=stop),
    match=answers_match,
    published_extract=last_number,
    published_correct=last_number_correct,
    published_name="last number",
    scoring={
        "accuracy": {
            "extractor": EXTRACTOR,
            "rule": "slam-align's answer extraction (docs/evaluation.md); right when "
            "|pred - gold| <= 1e-4 (or 1e-6 relative); no number is wrong",
        },
        "accuracy_last_number": {
            "extractor": LAST_NUMBER,
            "rule": "the published protocol: the last number of the output after removing digit-group "
            f"commas; right when |gold - pred| < {PEER_TOLERANCE:g}; no number is wrong",
            "follows": "QAlign evaluate/scripts/mgsm_test.py:96-100,202-209 and svamp_test.py:84-88,183-190 "
            "@ a65ee638; MathOctopus step1_supervised_finetuning/generate_and_eval.py:94-98,198-205 and "
            "svamp_test.py:84-88,183-190 @ 4d385db6",
        },
    },
)

CHOICE = AnswerType(
    name="choice",
    check_row=row_choices,
    parse_gold=lambda answer, row: parse_choice_gold(answer, row_choices(row)),
    extract=lambda prediction, row, stop: extract_choice(
        prediction, row_choices(row), row["lang"], stop=stop
    ),
    match=lambda extracted, gold: extracted is not None and extracted == gold,
    published_extract=answer_is_choice,
    published_correct=answer_is_correct,
    published_name="published",
    scoring={
        "accuracy": {
            "extractor": CHOICE_EXTRACTOR,
            "rule": "slam-align's choice extraction (docs/evaluation.md): the label or the text of the "
            "option the output picks, in any of 16 languages; right when it is the gold label; no answer is wrong",
        },
        "accuracy_last_number": {
            "extractor": ANSWER_IS,
            "rule": "the published protocol of SLAM's X-CSQA evaluator: the first 'The answer is (X).' "
            "of the output; right when X is the gold letter (A-E); no match is wrong",
            "follows": "fmm170/SLAM evaluate_xcsqa-wyl/eval2statistic.py:133-170 @ 62368092",
        },
    },
)

ANSWER_TYPES: dict[str, AnswerType] = {t.name: t for t in (NUMBER, CHOICE)}


def answer_type_of(row: dict) -> AnswerType:
    """The row's answer type: its ``answer_type`` field, else its benchmark's definition, else number."""
    name = row.get("answer_type")
    if name is None:
        definition = find_definition(str(row.get("benchmark") or ""))
        name = definition.answer_type if definition is not None else "number"
    if name not in ANSWER_TYPES:
        raise SlamError(f"field 'answer_type' is {name!r}; expected one of: {', '.join(ANSWER_TYPES)}")
    return ANSWER_TYPES[name]


def scoring_record(answer_types: Sequence[str] = ("number",)) -> dict:
    """What produced the two accuracies, for metrics.json: one answer type's record; with several
    (``slam eval --benchmark mgsm,xcsqa``) the first's, plus ``by_answer_type``."""
    names = list(dict.fromkeys(answer_types)) or ["number"]
    record = dict(ANSWER_TYPES[names[0]].scoring)
    if len(names) > 1:
        record["by_answer_type"] = {n: ANSWER_TYPES[n].scoring for n in names}
    return record
