"""``slam eval --model RUN_DIR --checkpoints all|last|N,M``: a training run's checkpoints, by step.

Every chosen checkpoint of a ``slam train`` run directory is evaluated with the same
options into a run directory of its own, then the averages are put side by side::

    OUTPUT/
      checkpoint-25/ checkpoint-50/ ... final/   one ``slam eval`` run directory each (resumable)
      accuracy_by_step.md / .csv / .png          average accuracy per step, both scores
      metrics.json                               the same as JSON: ``checkpoints``, one entry each
      run.json, config.yaml, environment.json, timing.json, README.md

Checkpoints are the Trainer's ``checkpoint-N`` folders (``slam train --save-steps K``) of the
run's last stage (``RUN_DIR/checkpoint-N``; two-stage: ``RUN_DIR/stage2/checkpoint-N``) that
are complete (``trainer_state.json``, written last, parses) and hold a model
(``config.json``), plus ``final/``. Which checkpoint is best is for ``slam compare
--select-on`` to decide, on a held-out split, never on the test set.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from slam_align.config import options_to_dict
from slam_align.errors import SlamError
from slam_align.evaluate.report import pct
from slam_align.io import (
    atomic_write_json,
    atomic_write_text,
    check_run_dir,
    open_run_dir,
    read_json_object,
    write_run_readme,
)

COMMAND = "eval --checkpoints"  # run.json's command: a sweep is not a plain slam eval directory
OUTPUTS = ("checkpoint-*", "final", "accuracy_by_step.md", "accuracy_by_step.csv", "accuracy_by_step.png")
FINAL = "final"


@dataclass(frozen=True)
class Checkpoint:
    name: str  # "checkpoint-25" or "final"
    step: int | None  # optimizer steps (final: the run's last step, when the run says)
    path: Path


def _complete(path: Path) -> bool:
    try:
        json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _final_step(run_dir: Path) -> int | None:
    """The last stage's step count (timing.json), else the training record's."""
    timing = run_dir / "timing.json"
    try:
        stages = json.loads(timing.read_text(encoding="utf-8")).get("stages") or {}
        steps = list(stages.values())[-1]["steps"] if stages else None
        if isinstance(steps, int):
            return steps
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    try:
        steps = json.loads((run_dir / FINAL / "slam_train.json").read_text(encoding="utf-8")).get("steps")
    except (OSError, ValueError, AttributeError):
        return None
    return steps if isinstance(steps, int) else None


def find_checkpoints(run_dir: Path) -> list[Checkpoint]:
    """Complete ``checkpoint-N`` of the run's last stage in step order, then ``final/`` if present."""
    stage_dir = run_dir  # one stage: RUN_DIR/checkpoint-N; several: the last stage's folder only
    stages = sorted(p for p in run_dir.glob("stage*") if p.is_dir() and re.fullmatch(r"stage\d+", p.name))
    if stages and not any(run_dir.glob("checkpoint-*")):
        stage_dir = max(stages, key=lambda p: int(p.name[5:]))
    found = []
    for p in stage_dir.glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and p.is_dir() and _complete(p):
            found.append(Checkpoint(p.name, int(m.group(1)), p))
    found.sort(key=lambda c: c.step)
    if (run_dir / FINAL / "config.json").is_file():
        found.append(Checkpoint(FINAL, _final_step(run_dir), run_dir / FINAL))
    return found


def select_checkpoints(run_dir: Path, spec: list[str]) -> list[Checkpoint]:
    """``all``, ``last`` (final/, else the newest checkpoint) or steps ``N,M`` (and ``final``)."""
    if not run_dir.is_dir():
        raise SlamError(
            f"--checkpoints needs --model to be a slam train run directory; {run_dir} is not a directory"
        )
    found = find_checkpoints(run_dir)
    if not found:
        raise SlamError(
            f"{run_dir}: no complete checkpoint-N and no final/ model in this directory; expected a slam train "
            "run directory (train with --save-steps K to keep checkpoints)"
        )
    words = [w.strip().lower() for w in spec if w.strip()]
    if words == ["all"]:
        chosen = found
    elif words == ["last"]:
        chosen = [next((c for c in found if c.name == FINAL), found[-1])]
    else:
        by_key = {c.name if c.name == FINAL else str(c.step): c for c in found}
        chosen = []
        for w in words:
            if w in ("all", "last"):
                raise SlamError(f"--checkpoints: '{w}' cannot be combined with other values; use it alone")
            key = FINAL if w == FINAL else w.removeprefix("checkpoint-")
            if key != FINAL and not key.isdigit():
                raise SlamError(f"--checkpoints: '{w}' is not all, last, final or a step number")
            if key not in by_key:
                have = ", ".join(by_key)
                raise SlamError(f"--checkpoints {w}: {run_dir} has no such checkpoint (it has: {have})")
            if by_key[key] not in chosen:
                chosen.append(by_key[key])
    for c in chosen:
        if not (c.path / "config.json").is_file():
            raise SlamError(
                f"{c.path}: holds no model (config.json); LoRA checkpoints hold adapters: evaluate final/"
            )
    return chosen


def _summary_entry(c: Checkpoint, metrics: dict) -> dict:
    keys = ("average", "average_non_en", "average_last_number", "average_non_en_last_number")
    return {
        "name": c.name,
        "step": c.step,
        "path": str(c.path.resolve()),
        "metrics": f"{c.name}/metrics.json",
        "benchmarks": {
            name: {
                **{k: m.get(k) for k in keys},
                "accuracy": m["accuracy"],
                "accuracy_last_number": m.get("accuracy_last_number"),
            }
            for name, m in metrics["benchmarks"].items()
        },
    }


def evaluate_checkpoints(options, evaluate, check) -> dict:
    """Evaluate the chosen checkpoints of the training run ``options.model``; return the summary.

    ``evaluate(options) -> metrics`` evaluates one model; ``check(options)`` validates the
    options of one (slam eval's own functions, passed in by it)."""
    start = time.perf_counter()
    run_dir = Path(options.model).expanduser()
    chosen = select_checkpoints(run_dir, options.checkpoints)
    single = replace(options, model=str(chosen[0].path), checkpoints=None)
    check(single)  # bad options, benchmarks or languages fail before anything is written
    out = Path(options.output).expanduser()
    if out.resolve() == run_dir.resolve() or run_dir.resolve() in out.resolve().parents:
        raise SlamError(f"{out}: --output is inside the training run; write the evaluation elsewhere")
    check_run_dir(out, COMMAND, overwrite=options.overwrite, resume=True, outputs=OUTPUTS, resumable=True)
    with open_run_dir(
        out,
        COMMAND,
        config=options_to_dict(options),
        overwrite=options.overwrite,
        resume=not options.overwrite,
        outputs=OUTPUTS,
        resumable=True,
        record={"training_run": str(run_dir.resolve())},
    ) as run:
        run.begin_work()  # each checkpoint's directory resumes by itself
        entries, first = [], None
        for c in chosen:
            m = evaluate(replace(single, model=str(c.path), output=str(out / c.name), overwrite=False))
            first = first or m
            entries.append(_summary_entry(c, m))
        summary = {
            "training_run": str(run_dir.resolve()),
            "benchmark": first["benchmark"],
            "protocol": first["protocol"],
            "prompt": first["prompt"],
            "generation": first["generation"],
            "scoring": first["scoring"],
            "checkpoints": entries,
        }
        atomic_write_json(out / "metrics.json", summary)
        table = by_step_markdown(summary)
        atomic_write_text(out / "accuracy_by_step.md", f"# Accuracy by step: {run_dir}\n\n{table}")
        atomic_write_text(out / "accuracy_by_step.csv", by_step_csv(summary))
        by_step_plot(summary, out / "accuracy_by_step.png", f"{run_dir.name}: average accuracy by step")
        atomic_write_json(
            out / "timing.json", {"total_seconds": time.perf_counter() - start, "checkpoints": len(entries)}
        )
        write_run_readme(
            out / "README.md",
            f"slam eval --checkpoints: {run_dir}",
            {
                "Set-up": f"{len(entries)} checkpoints of `{run_dir}`; protocol `{summary['protocol']}`, prompt "
                f"`{summary['prompt']}`; each evaluated with the same options into its own directory.",
                "Average accuracy by step (%)": table,
                "Files": "`CHECKPOINT/` one slam eval run directory per checkpoint; `accuracy_by_step.md`, "
                "`.csv` and `.png` the averages per step, both scores; `metrics.json` the same as JSON. "
                "Choose a checkpoint on a held-out split with `slam compare TEST_SWEEP --select-on DEV_SWEEP` "
                "(docs/evaluation.md), never on the test set.",
            },
        )
        run.finish(checkpoints=[c.name for c in chosen])
    return summary


def _step_label(entry: dict) -> str:
    return "–" if entry["step"] is None else str(entry["step"])


def by_step_markdown(summary: dict) -> str:
    """One row per checkpoint; per benchmark: average, non-English average, last-number average."""
    names = list(dict.fromkeys(b for e in summary["checkpoints"] for b in e["benchmarks"]))
    head = ["checkpoint", "step"]
    for b in names:
        head += [f"{b} avg", f"{b} non-en avg", f"{b} avg (last number)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary["checkpoints"]:
        cells = [e["name"], _step_label(e)]
        for b in names:
            m = e["benchmarks"].get(b, {})
            cells += [pct(m.get("average")), pct(m.get("average_non_en")), pct(m.get("average_last_number"))]
        lines.append("| " + " | ".join(cells) + " |")
    return (
        "\n".join(lines)
        + "\n\nAccuracy in %; avg: slam-align's extraction, (last number): the published protocol.\n"
    )


def by_step_csv(summary: dict) -> str:
    """One line per (checkpoint, benchmark), fractions 0..1."""
    keys = ("average", "average_non_en", "average_last_number", "average_non_en_last_number")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["checkpoint", "step", "benchmark", *keys])
    for e in summary["checkpoints"]:
        for b, m in e["benchmarks"].items():
            w.writerow(
                [
                    e["name"],
                    "" if e["step"] is None else e["step"],
                    b,
                    *["" if m[k] is None else m[k] for k in keys],
                ]
            )
    return buf.getvalue()


def by_step_plot(summary: dict, path: Path, title: str) -> Path:
    """Average accuracy (solid) and its published-protocol reading (dashed) against the step."""
    from slam_align.plotting import pyplot, save_figure

    plt = pyplot()
    entries = summary["checkpoints"]
    known = [e["step"] for e in entries if e["step"] is not None]
    xs, last = [], max(known, default=0)
    for e in entries:  # a final/ of unknown step goes after the last checkpoint
        xs.append(e["step"] if e["step"] is not None else last + 1)
    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(dict.fromkeys(b for e in entries for b in e["benchmarks"]))
    for i, b in enumerate(names):
        colour = f"C{i}"
        for key, style, label in (("average", "-", ""), ("average_last_number", "--", " (last number)")):
            pts = [
                (x, e["benchmarks"][b][key])
                for x, e in zip(xs, entries)
                if e["benchmarks"].get(b, {}).get(key) is not None
            ]
            if pts:
                ax.plot(
                    [x for x, _ in pts],
                    [100 * y for _, y in pts],
                    style,
                    marker="o",
                    color=colour,
                    label=b + label,
                )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("average accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def read_sweep(path: Path) -> dict | None:
    """The summary of a checkpoint sweep directory, or None when ``path`` holds another kind of run."""
    metrics = path / "metrics.json"
    if not metrics.is_file():
        return None
    data = read_json_object(metrics, "metrics file")
    return data if isinstance(data.get("checkpoints"), list) else None
