"""The demo's files: README.md (the measured tables in the reader's words), results.json, plots."""

from __future__ import annotations

from pathlib import Path

from slam_align.evaluate.compare import markdown
from slam_align.io import atomic_write_json, atomic_write_text
from slam_align.synth import report


def findings(results: dict) -> list[str]:
    """Plain sentences about what the tables show, including where SLAM loses."""
    m, lines = results["methods"], []
    base, slam = m.get("base"), m.get("slam")
    if base:
        high, low = report.resource_averages(base["accuracy"])
        lines.append(
            f"The base model solves {100 * base['accuracy']['en']:.0f}% of the English problems, "
            f"{100 * high:.0f}% on average in the six high-resource stand-ins and {100 * low:.0f}% in "
            "the three low-resource ones."
        )
    sim = (results.get("similarity") or {}).get("base")
    if sim:
        lower, upper = report.premise_halves(sim["mean_non_en"])
        lines.append(
            f"Its similarity to English (centred cosine, mean over languages) is {lower:.2f} in the lower "
            f"half of the layers and {upper:.2f} in the upper half."
        )
    if base and slam:
        lines.append(
            f"SLAM trained {100 * slam['trainable_fraction']:.1f}% of the parameters (layers {slam.get('layers')}) "
            f"for {slam['train_seconds']:.0f} s and moved the non-English average from "
            f"{100 * base['average_non_en']:.1f}% to {100 * slam['average_non_en']:.1f}% (English "
            f"{100 * base['accuracy']['en']:.1f}% -> {100 * slam['accuracy']['en']:.1f}%)."
        )
        for name, e in m.items():
            if name in ("base", "slam"):
                continue
            d = e["average_non_en"] - slam["average_non_en"]
            side = "above" if d > 0 else "below"
            lines.append(
                f"{name}: non-English average {100 * e['average_non_en']:.1f}% ({100 * abs(d):.1f} points "
                f"{side} SLAM), English {100 * e['accuracy']['en']:.1f}%"
                + (
                    f", {e['train_seconds'] / slam['train_seconds']:.1f}x SLAM's training time."
                    if slam["train_seconds"]
                    else "."
                )
            )
    return lines


def readme_text(results: dict, versions: dict) -> str:
    p, w, t = results["preset"], results["world"], results["timing"]
    targets = results["targets"]
    n_ok = sum(1 for x in targets if x["held"])
    seeds = results.get("seeds") or [results["seed"]]
    lines = [
        f"# SLAM demo ({p['name']} world, seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})",
        "",
        "A synthetic multilingual world in which a tiny Llama, pretrained from scratch, reasons in English "
        "and has seen nine stand-in languages (`syn-bn` ... `syn-es`: generated lexicons, word orders, "
        "numerals and scripts; not the real languages) in amounts that follow real pretraining corpora. "
        "Every number below was measured in this run; `docs/demo.md` explains the world and the protocol.",
        "",
        f"## Targets: the base model's calibration ({n_ok} of {len(targets)} held)",
        "",
        "Checked on the base model alone, before any method is trained: the world must have the shape of a "
        "real English-centred model (English high, high-resource languages a large share of it, "
        "low-resource ones near the floor).",
        "",
        report.targets_table(targets),
        "",
        "## Accuracy on held-out problems (%)",
        "",
        markdown(report._rows(results)),
        f"{w['test']} held-out problems per language (the same problems in every language)"
        + (f"; the mean over seeds {seeds}" if len(seeds) > 1 else "")
        + ". `trainable %` is the share of parameters a method updates; `train time` the wall time of "
        "`slam train` (all stages).",
        "",
    ]
    if len(seeds) == 1:
        lines += [
            "Averages with 95% bootstrap intervals (over problems, drawn jointly across languages):",
            "",
            report.intervals_table(results),
            "",
        ]
    if results.get("across_seeds"):
        lines += [
            f"Across seeds {seeds} (world, base model and training all change with the seed):",
            "",
            report.seeds_table(results["across_seeds"]),
            "",
        ]
    lines += [
        "![accuracy per language](accuracy.png)",
        "",
        "## The paper's claims, as measured here",
        "",
        report.claims_table(results.get("claims", [])),
        "",
        "A difference between two methods holds or not only when its 95% paired bootstrap interval "
        "excludes the threshold; otherwise it is within noise.",
        "",
        "## What it shows",
        "",
        *[f"- {line}" for line in findings(results)],
        "",
    ]
    if results.get("similarity"):
        lines += [
            "## Where languages differ in the stack",
            "",
            "Per layer, the centred cosine between a question's hidden state in each language and in "
            "English (`slam identify`'s similarity statistic, docs/identify.md), for the base model and "
            "after each method:",
            "",
            "| model | " + " | ".join(f"L{i}" for i in range(results["num_layers"])) + " |",
            "|---|" + "---|" * results["num_layers"],
            *[
                f"| {name} | " + " | ".join(f"{v:.2f}" for v in s["mean_non_en"]) + " |"
                for name, s in results["similarity"].items()
            ],
            "",
            "![similarity per layer](similarity.png)",
            "",
        ]
    if results.get("identification"):
        lines += [
            "## Layer identification",
            "",
            f"`slam identify` ({results['identification'].get('method')}, score "
            f"{results['identification'].get('score')}) selected layers {results['identified_layers']} of "
            f"{results['num_layers']}.",
            "",
            "![layer scores](layer_scores.png)",
            "",
        ]
    lines += [
        "## Protocol",
        "",
        f"- world: {w}",
        f"- base model: {p['pretrain']}",
        f"- one-stage methods (SLAM and the baselines): {p['epochs']} epochs on SLAM's mixture (question "
        "alignment: X question -> English question, plus X question -> English chain of thought)",
        f"- two-stage (QAlign): stage 1 every parameter on question alignment, stage 2 every parameter on "
        f"the English reasoning set (MetaMathQA's role, {w['reasoning']} problems: the paper's 395K / 135K "
        f"proportion to the mixture), {p['two_stage_epochs']} epochs each",
        f"- batch {p['batch_size']}, learning rates {p['learning_rates']}, prompt `{p['prompt']}`",
        "",
        "## Time",
        "",
        f"- total {t['total_seconds']:.0f} s; pretraining {t['pretrain_seconds']:.0f} s "
        f"({'cached base model' if results['base_model']['from_cache'] else 'trained in this run'})",
        f"- training: {', '.join(f'{k} {v:.1f} s' for k, v in t['train_seconds'].items())}",
        f"- evaluation: {', '.join(f'{k} {v:.1f} s' for k, v in t['eval_seconds'].items())}",
        f"- {t.get('threads', '?')} torch thread(s) on a machine with {t.get('cpu_count', '?')} CPU cores "
        "(other work on the machine slows every step alike; compare ratios, not seconds); "
        f"torch {versions.get('torch', '?')}, transformers {versions.get('transformers', '?')}",
        "",
        "Files: `results.json` (all numbers), `metrics.json`, `timing.json`, `config.yaml`, `data/` (the "
        "world's files), `identify/`, `similarity/<method>/` (the statistic after each method), "
        "`runs/<method>/` (slam train), `eval/<method>/` (slam eval)"
        + (", `seed-N/` (each seed's own run)" if len(seeds) > 1 else "")
        + ".",
        "",
    ]
    return "\n".join(lines)


def write_report(out: Path, results: dict, versions: dict) -> None:
    out = Path(out)
    report.plot_accuracy(results, out / "accuracy.png")
    if results.get("identification"):
        report.plot_layer_scores(results, out / "layer_scores.png")
    if results.get("similarity"):
        report.plot_similarity(results, out / "similarity.png")
    atomic_write_json(out / "results.json", results)
    atomic_write_json(
        out / "metrics.json",
        {
            name: {k: e[k] for k in ("accuracy", "average", "average_non_en")}
            for name, e in results["methods"].items()
        }
        | {"targets": results["targets"], "claims": results.get("claims", [])},
    )
    atomic_write_json(out / "timing.json", {**results["timing"], "environment": versions})
    atomic_write_text(out / "README.md", readme_text(results, versions))
