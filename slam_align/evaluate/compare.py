"""``slam compare RUN_DIR...``: several evaluation runs in one table and one grouped bar chart.

Rows are runs; columns are the languages, the average, the non-English average, the
share of trainable parameters and the training time. Accuracy comes from each run's
``metrics.json`` (``slam eval``); a ``results.json`` of ``slam demo`` adds one row per method.
Trainable share and training time are looked up, tolerantly, in the run directory's
``timing.json`` / ``metrics.json`` / ``config.yaml`` and, when ``config.yaml`` names a local
model, in that model's directory and its parent (``slam train`` writes ``DIR/timing.json``
and the model to ``DIR/final``). Missing values show as "–".
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import option, options_to_dict
from slam_align.errors import SlamError
from slam_align.evaluate.report import bar_chart, order_langs, pct
from slam_align.io import atomic_write_json, atomic_write_text, atomic_write_yaml, write_run_readme


@dataclass
class CompareOptions:
    runs: list[str] = option(
        help="run directories (slam eval outputs, or a slam demo output)", positional=True
    )
    output: str | None = option(None, help="write comparison.md, comparison.csv and comparison.png here")
    benchmark: str | None = option(
        None, help="which benchmark's accuracy to compare (default: each run's first)"
    )
    names: list[str] | None = option(None, help="row names, comma-separated (default: the directory names)")
    overwrite: bool = option(
        False, help="replace files in a non-empty --output that holds no earlier comparison"
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


def _load(path: Path):
    try:
        if path.suffix == ".json":
            return json.loads(path.read_text(encoding="utf-8"))
        import yaml

        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:  # a stray unreadable file must not stop a comparison: skip it
        return None


def _num(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if v == v else None  # drop NaN


def _training_info(data) -> tuple[float | None, float | None]:
    """(trainable fraction, training seconds) from one record, if it is a training record."""
    if not isinstance(data, dict):
        return None, None
    frac = _num(data.get("trainable_fraction"))
    if frac is None and _num(data.get("trainable_percent")) is not None:
        frac = _num(data["trainable_percent"]) / 100
    if frac is None and _num(data.get("trainable_params")) and _num(data.get("total_params")):
        frac = _num(data["trainable_params"]) / _num(data["total_params"])
    if frac is None:  # only a record that knows what it trained tells training time
        return None, None
    seconds = None
    for key in ("train_seconds", "total_wall_seconds", "training_seconds", "train_runtime", "wall_seconds"):
        seconds = _num(data.get(key))
        if seconds is not None:
            break
    if seconds is None and isinstance(data.get("stages"), dict):
        walls = [_num(s.get("wall_seconds")) for s in data["stages"].values() if isinstance(s, dict)]
        seconds = sum(w for w in walls if w is not None) if any(w is not None for w in walls) else None
    return frac, seconds


def find_training_info(run_dir: Path) -> tuple[float | None, float | None]:
    """Look in the run directory, then in the evaluated model's directory and its parent."""
    places = [run_dir]
    config = _load(run_dir / "config.yaml") if (run_dir / "config.yaml").is_file() else None
    if isinstance(config, dict) and isinstance(config.get("model"), str):
        model = Path(config["model"]).expanduser()
        if not model.is_absolute():
            model = (Path.cwd() / model).resolve()
        if model.is_dir():
            places += [model, model.parent]
    frac = seconds = None
    for place in places:
        for name in ("timing.json", "metrics.json", "config.yaml"):
            if (place / name).is_file():
                f, s = _training_info(_load(place / name))
                frac = frac if frac is not None else f
                seconds = seconds if seconds is not None else s
        if frac is not None and seconds is not None:
            break
    return frac, seconds


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
        from slam_align.io import read_json

        metrics = read_json(metrics_path, "metrics file")
        if not isinstance(metrics, dict):
            raise SlamError(f"{metrics_path}: expected a JSON object")
        if "accuracy" in metrics or "benchmarks" in metrics:
            row = _row_from_block(
                run_dir.name, _benchmark_block(metrics, benchmark, metrics_path), str(run_dir)
            )
            row.trainable_fraction, row.train_seconds = find_training_info(run_dir)
            return [row]
    if results_path.is_file():  # slam demo: methods -> accuracy, trainable_fraction, train_seconds
        from slam_align.io import read_json

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
        out = Path(options.output)
        if out.exists() and not out.is_dir():
            raise SlamError(f"{out}: --output exists and is not a directory")
        if (
            out.is_dir()
            and any(out.iterdir())
            and not (out / "comparison.md").is_file()
            and not options.overwrite
        ):
            raise SlamError(
                f"{out}: directory is not empty and holds no comparison; pass --overwrite or another --output"
            )
        out.mkdir(parents=True, exist_ok=True)
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
        atomic_write_yaml(out / "config.yaml", options_to_dict(options))
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
    return result


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
