"""``slam compare RUN_DIR...``: several evaluation runs in one table and one grouped bar chart.

Rows are runs; columns are the languages, the average, the non-English average, the
share of trainable parameters and the training time. Accuracy comes from each run's
``metrics.json`` (``slam eval``), trainable share and training time from its ``training``
key (the record ``slam train`` left beside the model it trained; absent for a base model,
shown as "–"); a ``results.json`` of ``slam demo`` adds one row per method, a checkpoint
sweep (``slam eval --checkpoints``) one row per checkpoint.

``--metric`` chooses which accuracy the language columns, the chart and the selection
use: ``accuracy`` (this project's extraction) or ``last-number`` (the published protocol).
``--select-on DEV_SWEEP`` keeps, of each sweep, the one checkpoint with the best average on
a held-out split (a sweep of the same training run evaluated on a ``jsonl:`` benchmark),
never on a test set: a sweep evaluated on a built-in benchmark (MGSM, MSVAMP, GSM8K, X-CSQA) is refused.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import Options, option, options_to_dict
from slam_align.data.benchmarks import BENCHMARKS
from slam_align.errors import SlamError
from slam_align.evaluate.checkpoints import read_sweep
from slam_align.evaluate.report import bar_chart, order_langs, pct
from slam_align.io import atomic_write_json, atomic_write_text, open_run_dir, read_json, write_run_readme

OUTPUTS = ("comparison.md", "comparison.csv", "comparison.png")
METRICS = {"accuracy": "accuracy", "last-number": "accuracy_last_number"}
METRIC_TITLES = {"accuracy": "accuracy", "last-number": "accuracy, published protocol (last number)"}


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
    metric: str = option(
        "accuracy",
        choices=list(METRICS),
        help="which accuracy the language columns, the chart and --select-on use: accuracy (slam-align's "
        "extraction) or last-number (the published QAlign/MathOctopus protocol)",
    )
    select_on: list[str] | None = option(
        None,
        help="checkpoint sweeps (slam eval --checkpoints) on a HELD-OUT split, never a test set: of each "
        "sweep compared, keep only the checkpoint with the best average there (same training run)",
    )
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
    accuracy_last_number: dict[str, float] | None = None
    average_last_number: float | None = None
    average_non_en_last_number: float | None = None
    checkpoint: str | None = None  # a sweep's row: its checkpoint and step
    step: int | None = None
    selected_on: str | None = None  # the held-out sweep it was selected on
    run_dir: str = ""  # the directory given on the command line

    def view(self, metric: str) -> tuple[dict[str, float], float | None, float | None]:
        """(per-language accuracy, average, non-English average) under ``metric``."""
        if metric == "last-number":
            return self.accuracy_last_number or {}, self.average_last_number, self.average_non_en_last_number
        return self.accuracy, self.average, self.average_non_en


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


def _scores(block: dict, suffix: str) -> tuple[dict[str, float] | None, float | None, float | None]:
    """(accuracy, average, average_non_en) of ``block`` (suffix "" or "_last_number")."""
    raw = block.get("accuracy" + suffix)
    if not isinstance(raw, dict):
        return None, None, None
    acc = {str(k): float(v) for k, v in raw.items() if _num(v) is not None}
    non_en = [v for k, v in acc.items() if k != "en"]
    average = _num(block.get("average" + suffix))
    average_non_en = _num(block.get("average_non_en" + suffix))
    return (
        acc,
        average if average is not None else (sum(acc.values()) / len(acc) if acc else None),
        average_non_en if average_non_en is not None else (sum(non_en) / len(non_en) if non_en else None),
    )


def _row_from_block(name: str, block: dict | None, where: str) -> Row:
    if block is None:
        return Row(name, {}, None, None, source=where)
    acc, average, average_non_en = _scores(block, "")
    last, last_average, last_non_en = _scores(block, "_last_number")
    return Row(
        name,
        acc or {},
        average,
        average_non_en,
        source=where,
        accuracy_last_number=last,
        average_last_number=last_average,
        average_non_en_last_number=last_non_en,
    )


def _sweep_rows(run_dir: Path, sweep: dict, benchmark: str | None) -> list[Row]:
    """One row per checkpoint of a ``slam eval --checkpoints`` directory."""
    rows = []
    for entry in sweep["checkpoints"]:
        blocks = entry.get("benchmarks") or {}
        name = benchmark or sweep.get("benchmark") or next(iter(blocks), None)
        row = _row_from_block(
            f"{run_dir.name}/{entry['name']}", blocks.get(name), str(run_dir / entry["name"])
        )
        row.checkpoint, row.step = entry["name"], entry.get("step")
        rows.append(row)
    return rows


def read_run(run_dir: str | Path, benchmark: str | None = None) -> list[Row]:
    """One row per evaluation in ``run_dir`` (one for slam eval; one per method for slam demo)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SlamError(f"{run_dir}: run directory not found")
    metrics_path, results_path = run_dir / "metrics.json", run_dir / "results.json"
    sweep = read_sweep(run_dir)
    if sweep is not None:
        return _sweep_rows(run_dir, sweep, benchmark)
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


def _sweep_benchmarks(sweep: dict) -> set[str]:
    return {b for e in sweep["checkpoints"] for b in e.get("benchmarks", {})}


def _held_out_sweeps(options: CompareOptions) -> dict[str, tuple[Path, dict]]:
    """training run -> (directory, summary) of each --select-on sweep; refuses test sets."""
    out = {}
    for item in options.select_on or []:
        path = Path(item).expanduser()
        if not path.is_dir():
            raise SlamError(f"--select-on {item}: run directory not found")
        sweep = read_sweep(path)
        if sweep is None:
            raise SlamError(
                f"--select-on {item}: not a checkpoint sweep (slam eval --model RUN --checkpoints ... on a "
                "held-out split)"
            )
        tested = sorted(_sweep_benchmarks(sweep) & set(BENCHMARKS))
        if tested:
            raise SlamError(
                f"--select-on {item}: evaluated on {', '.join(tested)}, a test set; select checkpoints on a "
                "held-out split (a jsonl: benchmark of problems neither trained on nor tested), never on the test set"
            )
        out[str(sweep.get("training_run"))] = (path, sweep)
    return out


def _best(sweep: dict, metric: str, where: Path) -> tuple[str, dict[str, float | None]]:
    """The checkpoint with the best average of the sweep's first benchmark (ties: the earlier one)."""
    key = "average" if metric == "accuracy" else "average_last_number"
    scores = {}
    for e in sweep["checkpoints"]:
        blocks = e.get("benchmarks") or {}
        block = blocks.get(sweep.get("benchmark")) or next(iter(blocks.values()), {})
        scores[e["name"]] = _num(block.get(key))
    known = {k: v for k, v in scores.items() if v is not None}
    if not known:
        raise SlamError(f"--select-on {where}: no checkpoint has a {metric} average to select on")
    best = max(known, key=lambda k: (known[k], -list(scores).index(k)))
    return best, scores


def _select(options: CompareOptions, rows: list[Row], selections: list) -> list[Row]:
    """Of each sweep, keep the checkpoint chosen on its held-out sweep."""
    held_out = _held_out_sweeps(options)
    kept: list[Row] = []
    by_run: dict[str, list[Row]] = {}
    for row in rows:
        by_run.setdefault(row.run_dir, []).append(row)
    for run, group in by_run.items():
        sweep = read_sweep(Path(run))
        if sweep is None:
            kept += group
            continue
        match = held_out.get(str(sweep.get("training_run")))
        if match is None:
            raise SlamError(
                f"{run}: no --select-on sweep of the same training run ({sweep.get('training_run')}); "
                "evaluate its checkpoints on the held-out split too"
            )
        where, dev = match
        shared = sorted(_sweep_benchmarks(dev) & _sweep_benchmarks(sweep))
        if shared:
            raise SlamError(
                f"--select-on {where}: evaluated on {', '.join(shared)}, as {run} is: a checkpoint selected on "
                "the split it is reported on overstates it; select on a held-out split"
            )
        best, scores = _best(dev, options.metric, where)
        chosen = [r for r in group if r.checkpoint == best]
        if not chosen:
            raise SlamError(f"{run}: has no {best}, the checkpoint selected on {where}")
        chosen[0].selected_on = str(where)
        chosen[0].name = f"{Path(run).name} ({best}, selected on {where.name})"
        selections.append(
            {"run": run, "selected": best, "on": str(where), "split": dev.get("benchmark"), "metric": options.metric,
             "scores": scores}
        )  # fmt: skip
        kept += chosen
    return kept


def collect_rows(options: CompareOptions, selections: list | None = None) -> list[Row]:
    if not options.runs:
        raise SlamError("no run directories given; usage: slam compare RUN_DIR... [--output DIR]")
    rows: list[Row] = []
    for run in options.runs:
        for row in read_run(run, options.benchmark):
            row.run_dir = str(run)
            rows.append(row)
    if options.select_on:
        rows = _select(options, rows, selections if selections is not None else [])
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
    if all(not r.view(options.metric)[0] for r in rows):
        what = "accuracy" if options.metric == "accuracy" else "last-number accuracy"
        raise SlamError(f"none of the runs has {what} for benchmark '{options.benchmark}'")
    return rows


# ---------------------------------------------------------------------------------------
# Table, CSV, chart
# ---------------------------------------------------------------------------------------


def _seconds(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s:.0f} s" if s < 600 else f"{s / 60:.1f} min" if s < 36000 else f"{s / 3600:.1f} h"


def markdown(rows: list[Row], metric: str = "accuracy") -> str:
    """Languages and averages under ``metric``; the other metric's average in its own column."""
    other = "last-number" if metric == "accuracy" else "accuracy"
    langs = order_langs(lang for r in rows for lang in r.view(metric)[0])
    other_head = "avg (last number)" if other == "last-number" else "avg (slam-align)"
    head = ["run", *langs, "avg", "non-en avg", other_head, "trainable %", "train time"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        acc, average, non_en = r.view(metric)
        frac = "–" if r.trainable_fraction is None else f"{100 * r.trainable_fraction:.2f}"
        cells = [pct(acc.get(lang)) for lang in langs]
        cells += [pct(average), pct(non_en), pct(r.view(other)[1]), frac, _seconds(r.train_seconds)]
        lines.append("| " + " | ".join([r.name, *cells]) + " |")
    which = (
        "slam-align's extraction"
        if metric == "accuracy"
        else "the published protocol of QAlign / MathOctopus (last number of the output)"
    )
    return "\n".join(lines) + f"\n\nAccuracy in %, by {which}; averages weigh every language equally.\n"


def to_csv(rows: list[Row], metric: str = "accuracy") -> str:
    """Machine-readable: accuracies as fractions 0..1 (the language columns, ``average`` and
    ``average_non_en`` under ``metric``; both averages in their own columns), trainable_fraction
    0..1, seconds."""
    langs = order_langs(lang for r in rows for lang in r.view(metric)[0])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["run", *langs, "average", "average_non_en", "trainable_fraction", "train_seconds", "metric",
         "average_accuracy", "average_last_number", "checkpoint", "step", "selected_on", "source"]
    )  # fmt: skip
    for r in rows:
        acc, average, non_en = r.view(metric)
        w.writerow(
            [
                r.name,
                *["" if acc.get(lang) is None else acc[lang] for lang in langs],
                *["" if v is None else v for v in (average, non_en, r.trainable_fraction, r.train_seconds)],
                metric,
                *["" if v is None else v for v in (r.average, r.average_last_number, r.checkpoint, r.step)],
                r.selected_on or "",
                r.source,
            ]
        )
    return buf.getvalue()


def _row_dict(r: Row) -> dict:
    return {
        "name": r.name,
        "source": r.source,
        "accuracy": r.accuracy,
        "average": r.average,
        "average_non_en": r.average_non_en,
        "accuracy_last_number": r.accuracy_last_number,
        "average_last_number": r.average_last_number,
        "average_non_en_last_number": r.average_non_en_last_number,
        "trainable_fraction": r.trainable_fraction,
        "train_seconds": r.train_seconds,
        "checkpoint": r.checkpoint,
        "step": r.step,
        "selected_on": r.selected_on,
    }


def compare(options: CompareOptions) -> dict:
    selections: list = []
    rows = collect_rows(options, selections)
    result = {
        "benchmark": options.benchmark,
        "metric": options.metric,
        "runs": [_row_dict(r) for r in rows],
        "selection": selections,
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
        table = markdown(rows, options.metric)
        atomic_write_text(out / "comparison.md", "# slam compare\n\n" + table)
        atomic_write_text(out / "comparison.csv", to_csv(rows, options.metric))
        langs = order_langs(lang for r in rows for lang in r.view(options.metric)[0])
        series = {}
        for r in rows:
            acc, average, non_en = r.view(options.metric)
            values = {**acc, "avg": average, "non-en": non_en}
            series[r.name] = {c: values.get(c) for c in [*langs, "avg", "non-en"]}
        bar_chart(
            series,
            out / "comparison.png",
            METRIC_TITLES[options.metric]
            + " per language"
            + (f" ({options.benchmark})" if options.benchmark else ""),
        )
        atomic_write_json(out / "metrics.json", result)
        atomic_write_json(out / "timing.json", {"compare_seconds": time.perf_counter() - started})
        selected = "".join(
            f"\n- {Path(s['run']).name}: {s['selected']}, best {s['metric']} average on `{s['on']}` ({s['split']})"
            for s in result["selection"]
        )
        write_run_readme(
            out / "README.md",
            "slam compare",
            {
                "Runs": "\n".join(f"- {r.name}: `{r.source}`" for r in rows)
                + (f"\n\nCheckpoints selected on a held-out split:{selected}" if selected else ""),
                "Table": table,
                "Files": "`comparison.md` this table; `comparison.csv` the same as fractions 0..1 and seconds; "
                f"`comparison.png` grouped bars ({METRIC_TITLES[options.metric]}); `metrics.json` the rows as JSON.",
            },
        )
        run.finish()


def compare_cli(options: CompareOptions) -> int:
    result = compare(options)
    keys = [f.name for f in dataclasses.fields(Row) if f.name != "run_dir"]
    rows = [Row(**{k: r[k] for k in keys}) for r in result["runs"]]
    print(markdown(rows, options.metric))
    for s in result["selection"]:
        print(
            f"{Path(s['run']).name}: {s['selected']} selected on {s['on']} ({s['split']}, best {s['metric']})"
        )
    if options.output:
        print(f"wrote {Path(options.output) / 'comparison.md'}, comparison.csv, comparison.png")
    return 0
