"""``slam score``: re-score saved generations with today's answer extraction.

Any JSONL with ``lang``, ``prediction`` and ``answer`` per line works (``slam eval``'s
``predictions.jsonl``, or another tool's output), so old runs benefit from extraction
fixes. ``slam eval`` computes its own metrics through the same function, which is why
scoring a run's predictions reproduces its ``metrics.json``.

Every row gets two verdicts, as its answer type (:mod:`slam_align.evaluate.answers`) says:
``correct`` (the project's extraction: :func:`~slam_align.evaluate.extract.extract_answer` for
numbers, :func:`~slam_align.evaluate.choice.extract_choice` for choices) and
``correct_last_number`` (the published protocol: the last number, as QAlign and MathOctopus
score; for a choice benchmark SLAM's "The answer is (X).", its X-CSQA evaluator's rule).
A choice row also carries ``answer_type: choice`` and its ``choices`` (``{label: text}``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import Options, option
from slam_align.errors import SlamError
from slam_align.evaluate.answers import ANSWER_TYPES, answer_type_of, scoring_record
from slam_align.evaluate.report import compute_metrics, order_langs, pct
from slam_align.io import check_directory_path, dumps_json, read_jsonl

SCORE_FIELDS = ("extracted", "correct", "extracted_last_number", "correct_last_number")


def score_row(row: dict, where: str = "row", stop: Sequence[str] | None = None) -> dict:
    """``row`` plus :data:`SCORE_FIELDS` recomputed from ``prediction`` and ``answer``.

    ``answer`` comes back parsed (a float; a choice label); the published protocol reads the
    answer as the file writes it (its own extractor on the string), as the peers' scripts do."""
    for name in ("lang", "answer"):
        if row.get(name) is None:
            raise SlamError(f"{where}: missing field '{name}'")
    if "prediction" not in row:
        raise SlamError(f"{where}: missing field 'prediction'")
    prediction = row["prediction"]
    if prediction is not None and not isinstance(prediction, str):
        raise SlamError(f"{where}: field 'prediction' must be a string, got {type(prediction).__name__}")
    try:
        kind = answer_type_of(row)
        kind.check_row(row)
    except SlamError as e:
        raise SlamError(f"{where}: {e}") from None
    try:
        gold = kind.parse_gold(row["answer"], row)
    except SlamError as e:
        raise SlamError(f"{where}: field 'answer': {e}") from None
    if not isinstance(row["lang"], str) or not row["lang"].strip():
        raise SlamError(f"{where}: field 'lang' must be a language code, got {row['lang']!r}")
    lang = row["lang"]
    # Every template's stops (the file may not say which template made it): what slam eval cuts.
    extracted = kind.extract(prediction, row, stop)
    return {
        **row,
        "lang": lang,
        "extracted": extracted,
        "answer": gold,
        "correct": kind.match(extracted, gold),
        "extracted_last_number": kind.published_extract(prediction),
        "correct_last_number": kind.published_correct(prediction, row["answer"]),
    }


def score_predictions(rows: Sequence[dict], n_boot: int = 1000, seed: int = 0, source: str = "predictions"):
    """(re-scored rows, metrics) for ``rows``; errors name ``source`` and the row's line."""
    scored = []
    for i, r in enumerate(rows):
        where = f"{source}: line {r.get('_line', i + 1)}"
        scored.append({k: v for k, v in score_row(r, where).items() if k != "_line"})
    metrics = compute_metrics(scored, n_boot=n_boot, seed=seed)
    metrics["scoring"] = scoring_record([answer_type_of(r).name for r in scored])
    return scored, metrics


def read_predictions(path: str | Path) -> list[dict]:
    """JSON Lines with each row's line number kept (``_line``) for error messages."""
    path = Path(path)
    rows = read_jsonl(path, line_key="_line", what="predictions file")
    if not rows:
        raise SlamError(f"{path}: no predictions in the file")
    return rows


@dataclass
class ScoreOptions(Options):
    predictions: str = option(
        help="JSONL file with lang, prediction and answer per line (e.g. predictions.jsonl; a choice "
        "benchmark's rows also carry choices)"
    )
    json: bool = option(
        False, help="print one JSON object (accuracy per language, average, ...) instead of a table"
    )
    bootstrap: int = option(1000, help="bootstrap resamples for the 95%% intervals (0: none)", at_least=0)
    seed: int = option(0, help="seed of the bootstrap")
    output: str | None = option(
        None, help="also write the metrics JSON to this file (not the predictions file)"
    )


# The mark of slam score's metrics file: an existing --output is replaced only when it has it.
WRITTEN_BY = "slam score"


def _check_replaceable(path: Path) -> None:
    if not path.exists():
        return
    try:
        mark = json.loads(path.read_text(encoding="utf-8")).get("written_by")
    except (OSError, ValueError, AttributeError):
        mark = None
    if mark != WRITTEN_BY:
        raise SlamError(
            f"--output {path} exists and was not written by slam score; it is never replaced: "
            "choose another file name"
        )


def score_cli(options: ScoreOptions) -> int:
    if options.output and Path(options.output).expanduser().resolve() == Path(options.predictions).resolve():
        raise SlamError(
            f"--output {options.output} is the predictions file itself; write the metrics elsewhere"
        )
    if options.output and Path(options.output).is_dir():
        raise SlamError(
            f"--output {options.output} is a directory; expected a file name for the metrics JSON"
        )
    if options.output:
        check_directory_path(Path(options.output).expanduser().parent, "--output's folder")
        _check_replaceable(Path(options.output).expanduser())
    rows = read_predictions(options.predictions)
    scored, metrics = score_predictions(
        rows, n_boot=options.bootstrap, seed=options.seed, source=options.predictions
    )
    changed = sum(
        1
        for old, new in zip(rows, scored)
        if "correct" in old and bool(old["correct"]) != bool(new["correct"])
    )
    metrics["rescored"] = {"rows": len(scored), "changed_vs_file": changed}
    metrics["written_by"] = WRITTEN_BY
    if options.output:
        from slam_align.io import atomic_write_json

        atomic_write_json(options.output, metrics)
    if options.json:
        print(dumps_json(metrics, indent=None))
        return 0
    print(format_scores(metrics))
    print(f"{len(scored)} predictions; {changed} scored differently from the file's 'correct' field")
    return 0


def format_scores(metrics: dict) -> str:
    lines = []
    types = []
    for name, m in metrics["benchmarks"].items():
        kind = ANSWER_TYPES[m.get("answer_type", "number")]
        types.append(kind.name)
        published = kind.published_name
        lines.append(f"{name}:")
        for lang in order_langs(m["accuracy"]):
            lo, hi = (m["ci95"]["accuracy"].get(lang) or [None, None])[:2]
            ci = f"  [{pct(lo)}, {pct(hi)}]" if lo is not None else ""
            last = m.get("accuracy_last_number", {}).get(lang)
            lines.append(
                f"  {lang:>8}  {pct(m['accuracy'][lang]):>5}%  ({m['correct'][lang]}/{m['n'][lang]}){ci}"
                f"  {published} {pct(last):>5}%  no answer {pct(m['no_answer_rate_per_lang'][lang])}%"
            )
        lines.append(
            f"  {'average':>8}  {pct(m['average']):>5}%  {published} {pct(m.get('average_last_number')):>5}%"
        )
        if m["average_non_en"] is not None:
            lines.append(
                f"  {'non-en':>8}  {pct(m['average_non_en']):>5}%"
                f"  {published} {pct(m.get('average_non_en_last_number')):>5}%"
            )
    if "number" in types:
        lines.append(
            "accuracy: slam-align's extraction; last number: the published protocol of QAlign / MathOctopus "
            "(docs/evaluation.md)"
        )
    if "choice" in types:
        lines.append(
            'accuracy (choice): slam-align\'s choice extraction; published: the first "The answer is (X).", '
            "as SLAM's X-CSQA evaluator scores (docs/evaluation.md)"
        )
    return "\n".join(lines)
