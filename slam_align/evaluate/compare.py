"""``slam compare RUN_DIR...``: several evaluation runs in one table and one grouped bar chart.

Rows are runs; columns are the languages, the average, the non-English average, the
share of trainable parameters and the training time. Accuracy comes from each run's
``metrics.json`` (``slam eval``), trainable share and training time from its ``training``
key (the record ``slam train`` left beside the model it trained; absent for a base model,
shown as "–"); a ``results.json`` of ``slam demo`` adds one row per method.
"""

from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import Options, option, options_to_dict
from slam_align.errors import SlamError
from slam_align.evaluate.report import bar_chart, order_langs, pct
from slam_align.io import atomic_write_json, atomic_write_text, open_run_dir, read_json, write_run_readme

OUTPUTS = ("comparison.md", "comparison.csv", "comparison.png")


@dataclass
class CompareOptions(Options):
    runs: list[str] = option(
        help="run directories (slam eval outputs, or a slam demo output)", positional=True
    )
    output: str | None = option(None, help="write comparison.md, comparison.csv and comparison.png here")
    benchmark: str | None = option(
        None, help="which benchmark's accuracy to compare (default: each run's first)"
    )
    names: list[str] | None = option(None, help="row names, comma-separated (default: the directory names)")
    overwrite: bool = option(
        False, help="start --output afresh (an earlier comparison there is replaced anyway)"
    )


@dataclass
class Row:
    name: str
    accuracy: dict[str, float]
    average: float | None
    average_non_en: float | None
    trainable_fraction: float | None = None
    train_seconds: float | None = None
    source: str = ""


# ---------------------------------------------------------------------------------------
# Reading run directories
# ---------------------------------------------------------------------------------------


def _num(x) -> float | None:
    if isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _benchmark_block(metrics: dict, benchmark: str | None, where: Path) -> dict | None:
    if isinstance(metrics.get("benchmarks"), dict) and metrics["benchmarks"]:
        if benchmark is None:
            benchmark = metrics.get("benchmark") or next(iter(metrics["benchmarks"]))
        return metrics["benchmarks"].get(benchmark)
    if isinstance(metrics.get("accuracy"), dict):
        return metrics if benchmark in (None, metrics.get("benchmark")) else None
    raise SlamError(f"{where}: no 'accuracy' in this metrics file; expected slam eval's metrics.json")


def _row_from_block(name: str, block: dict | None, where: str) -> Row:
    if block is None:
        return Row(name, {}, None, None, source=where)
    acc = {str(k): float(v) for k, v in block["accuracy"].items() if _num(v) is not None}
    non_en = [v for k, v in acc.items() if k != "en"]
    average = _num(block.get("average"))
    average_non_en = _num(block.get("average_non_en"))
    return Row(
        name,
        acc,
        average if average is not None else (sum(acc.values()) / len(acc) if acc else None),
        average_non_en if average_non_en is not None else (sum(non_en) / len(non_en) if non_en else None),
        source=where,
    )


def read_run(run_dir: str | Path, benchmark: str | None = None) -> list[Row]:
    """One row per evaluation in ``run_dir`` (one for slam eval; one per method for slam demo)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SlamError(f"{run_dir}: run directory not found")
    metrics_path, results_path = run_dir / "metrics.json", run_dir / "results.json"
    if metrics_path.is_file():
        metrics = read_json(metrics_path, "metrics file")
        if not isinstance(metrics, dict):
            raise SlamError(f"{metrics_path}: expected a JSON object")
        if "accuracy" in metrics or "benchmarks" in metrics:
            row = _row_from_block(
                run_dir.name, _benchmark_block(metrics, benchmark, metrics_path), str(run_dir)
            )
            training = metrics.get("training")
            if isinstance(training, dict):
                row.trainable_fraction = _num(training.get("trainable_fraction"))
                row.train_seconds = _num(training.get("train_seconds"))
            return [row]
    if results_path.is_file():  # slam demo: methods -> accuracy, trainable_fraction, train_seconds
        results = read_json(results_path, "results file")
        methods = results.get("methods") if isinstance(results, dict) else None
        if not isinstance(methods, dict) or not methods:
            raise SlamError(f"{results_path}: expected 'methods' mapping each method to its accuracy")
        rows = []
        for method, m in methods.items():
            row = _row_from_block(
                method, m if isinstance(m, dict) and "accuracy" in m else None, str(run_dir)
            )
            row.trainable_fraction = _num(m.get("trainable_fraction")) if isinstance(m, dict) else None
            row.train_seconds = _num(m.get("train_seconds")) if isinstance(m, dict) else None
            rows.append(row)
        return rows
    raise SlamError(f"{run_dir}: no metrics.json (slam eval) or results.json (slam demo) in this directory")


def collect_rows(options: CompareOptions) -> list[Row]:
    if not options.runs:
        raise SlamError("no run directories given; usage: slam compare RUN_DIR... [--output DIR]")
    rows: list[Row] = []
    for run in options.runs:
        rows += read_run(run, options.benchmark)
    if options.names:
        if len(options.names) != len(rows):
            raise SlamError(f"--names has {len(options.names)} names for {len(rows)} rows")
        for row, name in zip(rows, options.names):
            row.name = name
    seen: dict[str, int] = {}
    for row in rows:  # two runs both called "eval" stay distinguishable
        seen[row.name] = seen.get(row.name, 0) + 1
        if seen[row.name] > 1:
            row.name = f"{row.name} ({seen[row.name]})"
    if all(not r.accuracy for r in rows):
        raise SlamError(f"none of the runs has accuracy for benchmark '{options.benchmark}'")
    return rows


# ---------------------------------------------------------------------------------------
# Table, CSV, chart
# ---------------------------------------------------------------------------------------


def _seconds(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s:.0f} s" if s < 600 else f"{s / 60:.1f} min" if s < 36000 else f"{s / 3600:.1f} h"


def markdown(rows: list[Row]) -> str:
    langs = order_langs(lang for r in rows for lang in r.accuracy)
    head = ["run", *langs, "avg", "non-en avg", "trainable %", "train time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        frac = "–" if r.trainable_fraction is None else f"{100 * r.trainable_fraction:.2f}"
        cells = [pct(r.accuracy.get(lang)) for lang in langs]
        cells += [pct(r.average), pct(r.average_non_en), frac, _seconds(r.train_seconds)]
        lines.append("| " + " | ".join([r.name, *cells]) + " |")
    return "\n".join(lines) + "\n\nAccuracy in %; averages weigh every language equally.\n"


def to_csv(rows: list[Row]) -> str:
    """Machine-readable: accuracies as fractions 0..1, trainable_fraction 0..1, seconds."""
    langs = order_langs(lang for r in rows for lang in r.accuracy)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", *langs, "average", "average_non_en", "trainable_fraction", "train_seconds", "source"])
    for r in rows:
        w.writerow(
            [
                r.name,
                *["" if r.accuracy.get(lang) is None else r.accuracy[lang] for lang in langs],
                *[
                    "" if v is None else v
                    for v in (r.average, r.average_non_en, r.trainable_fraction, r.train_seconds)
                ],
                r.source,
            ]
        )
    return buf.getvalue()


def compare(options: CompareOptions) -> dict:
    rows = collect_rows(options)
    result = {
        "benchmark": options.benchmark,
        "runs": [
            {
                "name": r.name,
                "source": r.source,
                "accuracy": r.accuracy,
                "average": r.average,
                "average_non_en": r.average_non_en,
                "trainable_fraction": r.trainable_fraction,
                "train_seconds": r.train_seconds,
            }
            for r in rows
        ],
    }
    if options.output:
        _write(options, rows, result)
    return result


def _write(options: CompareOptions, rows: list[Row], result: dict) -> None:
    out = Path(options.output).expanduser()
    if any(out.resolve() == Path(run).expanduser().resolve() for run in options.runs):
        raise SlamError(f"{out}: --output is one of the runs being compared; write the comparison elsewhere")
    started = time.perf_counter()
    # A comparison is derived from its runs: writing it again into its own directory is fine.
    with open_run_dir(
        out,
        "compare",
        config=options_to_dict(options),
        overwrite=options.overwrite,
        resume=True,
        resumable=True,
        outputs=OUTPUTS,
    ) as run:
        table = markdown(rows)
        atomic_write_text(out / "comparison.md", "# slam compare\n\n" + table)
        atomic_write_text(out / "comparison.csv", to_csv(rows))
        series = {r.name: {**r.accuracy, "avg": r.average, "non-en": r.average_non_en} for r in rows}
        langs = order_langs(lang for r in rows for lang in r.accuracy)
        series = {k: {c: v.get(c) for c in [*langs, "avg", "non-en"]} for k, v in series.items()}
        bar_chart(
            series,
            out / "comparison.png",
            "accuracy per language" + (f" ({options.benchmark})" if options.benchmark else ""),
        )
        atomic_write_json(out / "metrics.json", result)
        atomic_write_json(out / "timing.json", {"compare_seconds": time.perf_counter() - started})
        write_run_readme(
            out / "README.md",
            "slam compare",
            {
                "Runs": "\n".join(f"- {r.name}: `{r.source}`" for r in rows),
                "Table": table,
                "Files": "`comparison.md` this table; `comparison.csv` the same as fractions 0..1 and seconds; "
                "`comparison.png` grouped bars; `metrics.json` the rows as JSON.",
            },
        )
        run.finish()


def compare_cli(options: CompareOptions) -> int:
    result = compare(options)
    rows = [
        Row(
            r["name"],
            r["accuracy"],
            r["average"],
            r["average_non_en"],
            r["trainable_fraction"],
            r["train_seconds"],
        )
        for r in result["runs"]
    ]
    print(markdown(rows))
    if options.output:
        print(f"wrote {Path(options.output) / 'comparison.md'}, comparison.csv, comparison.png")
    return 0
