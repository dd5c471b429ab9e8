"""The demo's report: ``results.json``, ``README.md`` (table, targets), PNG plots.

Nothing here invents a number: every value comes from the run's measured results, and
the targets of the issue are checked against them and reported as held or not.
"""

from __future__ import annotations

from pathlib import Path

from slam_align.io import atomic_write_json, atomic_write_text
from slam_align.plotting import pyplot, save_figure

# The targets (what the demo should show). Thresholds, not results.
BASE_EN_MIN = 0.80
SLAM_GAIN_MIN = 0.15  # SLAM's non-English average minus the base's
SLAM_VS_FULL_AIM = 0.05  # aim: SLAM within this of full fine-tuning (non-English)
SLAM_EN_DROP_MAX = 0.05
SLAM_FRACTION_MAX = 0.20
TWO_STAGE_TIME_MIN = 2.0  # two-stage train time / SLAM's
TWO_STAGE_TIME_AIM = 4.1  # the paper's ratio


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def non_en_average(accuracy: dict) -> float:
    return _mean(v for k, v in accuracy.items() if k != "en")


def method_entry(metrics: dict, trained: dict | None) -> dict:
    """One row of ``results.json``'s ``methods`` from ``slam eval``'s metrics and ``slam train``'s summary."""
    accuracy = {lang: float(v) for lang, v in metrics["accuracy"].items()}
    entry = {
        "accuracy": accuracy,
        "average": _mean(accuracy.values()),
        "average_non_en": non_en_average(accuracy),
        "trainable_fraction": float(trained["trainable_fraction"]) if trained else 0.0,
        "train_seconds": float(trained["train_seconds"]) if trained else 0.0,
    }
    if trained:
        timing = trained.get("timing", {})
        entry["trainable_params"] = trained.get("trainable_params")
        entry["total_params"] = trained.get("total_params")
        entry["layers"] = trained.get("layers")
        entry["steps"] = timing.get("steps")
        entry["stages"] = {
            name: {"seconds": s["wall_seconds"], "steps": s["steps"], "examples": s["examples"]}
            for name, s in timing.get("stages", {}).items()
        }
    return entry


def one_line(entry: dict) -> str:
    return (
        f"en {entry['accuracy'].get('en', 0):.2f}, non-en avg {entry['average_non_en']:.2f}, "
        f"trained {entry['trainable_fraction']:.1%} of parameters in {entry['train_seconds']:.1f} s"
    )


def _target(name: str, value, threshold: str, held: bool | None, kind: str = "target") -> dict:
    return {"name": name, "value": value, "threshold": threshold, "held": held, "kind": kind}


def check_targets(results: dict) -> list[dict]:
    """The issue's targets against this run's measurements (``held`` is None where a method is missing)."""
    m = results["methods"]
    base, slam, full, two = m.get("base"), m.get("slam"), m.get("full"), m.get("two-stage")
    out = []
    if base:
        out.append(
            _target(
                "base English accuracy",
                base["accuracy"]["en"],
                f">= {BASE_EN_MIN}",
                base["accuracy"]["en"] >= BASE_EN_MIN,
            )
        )
        gap = base["accuracy"]["en"] - base["average_non_en"]
        out.append(
            _target("base English minus base non-English average", gap, ">= 0.30 (far below)", gap >= 0.30)
        )
    if base and slam:
        gain = slam["average_non_en"] - base["average_non_en"]
        out.append(
            _target("SLAM non-English gain over base", gain, f">= {SLAM_GAIN_MIN}", gain >= SLAM_GAIN_MIN)
        )
        drop = base["accuracy"]["en"] - slam["accuracy"]["en"]
        out.append(
            _target("SLAM English drop from base", drop, f"<= {SLAM_EN_DROP_MAX}", drop <= SLAM_EN_DROP_MAX)
        )
        frac = slam["trainable_fraction"]
        out.append(
            _target("SLAM trainable fraction", frac, f"<= {SLAM_FRACTION_MAX}", frac <= SLAM_FRACTION_MAX)
        )
    if slam and full:
        behind = full["average_non_en"] - slam["average_non_en"]
        out.append(
            _target(
                "full FT non-English average minus SLAM's",
                behind,
                f"<= {SLAM_VS_FULL_AIM}",
                behind <= SLAM_VS_FULL_AIM,
                "aim",
            )
        )
    if slam and two:
        ratio = two["train_seconds"] / slam["train_seconds"] if slam["train_seconds"] else None
        out.append(
            _target(
                "two-stage / SLAM training time",
                ratio,
                f">= {TWO_STAGE_TIME_MIN}",
                ratio is not None and ratio >= TWO_STAGE_TIME_MIN,
            )
        )
        out.append(
            _target(
                "two-stage / SLAM training time (paper)",
                ratio,
                f">= {TWO_STAGE_TIME_AIM}",
                ratio is not None and ratio >= TWO_STAGE_TIME_AIM,
                "aim",
            )
        )
        if base:
            two_drop = base["accuracy"]["en"] - two["accuracy"]["en"]
            slam_drop = base["accuracy"]["en"] - slam["accuracy"]["en"]
            out.append(
                _target(
                    "two-stage English drop minus SLAM's",
                    two_drop - slam_drop,
                    "> 0 (two-stage loses more English)",
                    two_drop > slam_drop,
                )
            )
    return out


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------


def _lang_order(results: dict) -> list[str]:
    langs = list(next(iter(results["methods"].values()))["accuracy"])
    return [lang for lang in langs if lang != "en"] + (["en"] if "en" in langs else [])


def markdown_table(results: dict) -> str:
    langs = _lang_order(results)
    head = ["method", *[lang.replace("syn-", "") for lang in langs], "non-en avg", "trained %", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, e in results["methods"].items():
        cells = [f"{100 * e['accuracy'][lang]:.1f}" for lang in langs]
        cells += [
            f"**{100 * e['average_non_en']:.1f}**",
            f"{100 * e['trainable_fraction']:.1f}",
            f"{e['train_seconds']:.1f}",
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines)


def targets_table(targets: list[dict]) -> str:
    lines = ["| what | measured | target | held |", "|---|---|---|---|"]
    for t in targets:
        value = "n/a" if t["value"] is None else f"{t['value']:.3f}"
        held = "n/a" if t["held"] is None else ("yes" if t["held"] else "**no**")
        kind = " (aim)" if t["kind"] == "aim" else ""
        lines.append(f"| {t['name']}{kind} | {value} | {t['threshold']} | {held} |")
    return "\n".join(lines)


def findings(results: dict) -> list[str]:
    """Plain sentences about what the table shows, including where SLAM loses."""
    m, lines = results["methods"], []
    base, slam = m.get("base"), m.get("slam")
    if base:
        lines.append(
            f"The base model solves {100 * base['accuracy']['en']:.0f}% of the English problems and "
            f"{100 * base['average_non_en']:.0f}% on average in the nine synthetic languages."
        )
    layers = results.get("identified_layers")
    if layers is not None:
        n = results.get("num_layers")
        lower = all(i < (n or 0) / 2 for i in layers)
        lines.append(
            f"Identification selected layers {layers} of {n}"
            + (
                " (all in the lower half, as the paper finds)."
                if lower
                else " (not all in the lower half, unlike the paper)."
            )
        )
    if base and slam:
        lines.append(
            f"SLAM trained {100 * slam['trainable_fraction']:.1f}% of the parameters for {slam['train_seconds']:.1f} s "
            f"and moved the non-English average from {100 * base['average_non_en']:.1f}% to "
            f"{100 * slam['average_non_en']:.1f}% (English {100 * base['accuracy']['en']:.1f}% -> {100 * slam['accuracy']['en']:.1f}%)."
        )
        lower = m.get("slam-lower")
        if lower and sorted(lower.get("layers") or []) == sorted(layers or []):
            lines.append("slam-lower trained the same layers as slam: identification chose the lowest ones.")
        elif lower:
            lines.append(
                f"slam-lower (layers {lower.get('layers')}) reached {100 * lower['average_non_en']:.1f}% "
                f"non-English and {100 * lower['accuracy']['en']:.1f}% English, against slam's "
                f"{100 * slam['average_non_en']:.1f}% and {100 * slam['accuracy']['en']:.1f}% on the identified layers."
            )
        for name, e in m.items():
            if name in ("base", "slam", "slam-lower"):
                continue
            d = e["average_non_en"] - slam["average_non_en"]
            if d > 0:
                lines.append(f"SLAM loses to {name} on the non-English average by {100 * d:.1f} points.")
            worse = [
                lang.replace("syn-", "")
                for lang in _lang_order(results)
                if e["accuracy"][lang] > slam["accuracy"][lang] + 1e-9
            ]
            if worse:
                lines.append(f"{name} beats SLAM in: {', '.join(worse)}.")
            if slam["train_seconds"]:
                lines.append(
                    f"{name} trained {e['train_seconds'] / slam['train_seconds']:.1f}x as long as SLAM."
                )
    return lines


def plot_accuracy(results: dict, path: Path) -> None:
    plt = pyplot()
    langs = _lang_order(results)
    names = list(results["methods"])
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(8, len(langs) * 0.9), 4))
    for i, name in enumerate(names):
        acc = results["methods"][name]["accuracy"]
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(langs))]
        ax.bar(xs, [100 * acc[lang] for lang in langs], width, label=name)
    ax.set_xticks(range(len(langs)), [lang.replace("syn-", "") for lang in langs])
    ax.set_ylabel("accuracy on held-out problems (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Synthetic world: accuracy per language (syn-xx stand-ins, en)")
    ax.legend(fontsize=8, ncol=min(len(names), 6))
    fig.tight_layout()
    save_figure(fig, path)


def plot_layer_scores(results: dict, path: Path) -> None:
    plt = pyplot()
    scores = results["identification"]["scores"]
    chosen = set(results["identified_layers"])
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(
        range(len(scores)),
        scores,
        color=["tab:red" if i in chosen else "tab:gray" for i in range(len(scores))],
    )
    ax.set_xticks(range(len(scores)))
    ax.set_xlabel("layer (red: selected for SLAM)")
    ax.set_ylabel(f"score ({results['identification'].get('score') or 'activation'})")
    ax.set_title("Layer identification")
    fig.tight_layout()
    save_figure(fig, path)


def summary_lines(results: dict) -> list[str]:
    lines = [markdown_table(results), ""]
    held = [t for t in results["targets"] if t["kind"] == "target"]
    ok = sum(1 for t in held if t["held"])
    lines.append(f"targets held: {ok} of {len(held)}")
    lines += [
        f"  not held: {t['name']} = {t['value']:.3f} (target {t['threshold']})"
        for t in held
        if t["held"] is False
    ]
    return lines


def write_report(out: Path, results: dict, versions: dict) -> None:
    out = Path(out)
    plot_accuracy(results, out / "accuracy.png")
    plot_layer_scores(results, out / "layer_scores.png")
    atomic_write_json(out / "results.json", results)
    atomic_write_json(
        out / "metrics.json",
        {
            name: {k: e[k] for k in ("accuracy", "average", "average_non_en")}
            for name, e in results["methods"].items()
        }
        | {"targets": results["targets"]},
    )
    atomic_write_json(
        out / "timing.json",
        {**results["timing"], "environment": versions},
    )
    atomic_write_text(out / "README.md", readme(results, versions))


def readme(results: dict, versions: dict) -> str:
    p = results["preset"]
    w = results["world"]
    t = results["timing"]
    held = [x for x in results["targets"] if x["kind"] == "target"]
    n_ok = sum(1 for x in held if x["held"])
    lines = [
        f"# SLAM demo ({p['name']} world, seed {results['seed']})",
        "",
        "A synthetic multilingual world in which a tiny Llama, pretrained from scratch, reasons in "
        "English and only reads nine stand-in languages (`syn-bn` ... `syn-es`: generated lexicons, "
        "word orders, numerals and scripts; not the real languages). Every number below was measured "
        "in this run; see `docs/demo.md` for how the world and the protocol are built.",
        "",
        "## Accuracy on held-out problems (%)",
        "",
        markdown_table(results),
        "",
        f"{w['test']} held-out problems per language (the same problems in every language); "
        f"`trained %` is the share of parameters each method updates; `train s` is the wall time of "
        f"`slam train` (all stages). Per-language 95% intervals are in `eval/<method>/metrics.json`.",
        "",
        "![accuracy per language](accuracy.png)",
        "",
        "## What it shows",
        "",
        *[f"- {line}" for line in findings(results)],
        "",
        f"## Targets of the issue: {n_ok} of {len(held)} held",
        "",
        targets_table(results["targets"]),
        "",
        "Targets marked (aim) are goals, not requirements. A target that did not hold is reported, "
        "not tuned away.",
        "",
        "## Layer identification",
        "",
        f"`slam identify` ({results['identification'].get('method')}, score "
        f"{results['identification'].get('score')}) selected layers {results['identified_layers']} of "
        f"{results['num_layers']}.",
        "",
        "![layer scores](layer_scores.png)",
        "",
        "## Protocol",
        "",
        f"- world: {w}",
        f"- base model: {p['pretrain']}",
        f"- every method: {p['epochs']} epochs per stage, batch {p['batch_size']}, "
        f"learning rates {p['learning_rates']}, prompt `{p['prompt']}`",
        "- SLAM / full / lora / attention / random: one stage on question alignment (X question -> English "
        "question) + X question -> English chain-of-thought answer",
        "- two-stage (QAlign): stage 1 all parameters on question alignment, stage 2 all parameters on the "
        "larger English reasoning set (MetaMathQA's role)",
        "",
        "## Time",
        "",
        f"- total {t['total_seconds']:.0f} s; pretraining {t['pretrain_seconds']:.0f} s "
        f"({'cached base model' if results['base_model']['from_cache'] else 'trained in this run'}); "
        f"identification {t['identify_seconds']:.1f} s",
        f"- training: {', '.join(f'{k} {v:.1f} s' for k, v in t['train_seconds'].items())}",
        f"- evaluation: {', '.join(f'{k} {v:.1f} s' for k, v in t['eval_seconds'].items())}",
        f"- {t.get('threads', '?')} torch thread(s) on a machine with {t.get('cpu_count', '?')} CPU cores "
        "(other work on the machine slows every step alike; compare ratios, not seconds); "
        f"torch {versions.get('torch', '?')}, transformers {versions.get('transformers', '?')}",
        "",
        "Files: `results.json` (all numbers), `metrics.json`, `timing.json`, `config.yaml`, "
        "`data/` (the world's files), `identify/`, `runs/<method>/` (slam train), `eval/<method>/` (slam eval).",
        "",
    ]
    return "\n".join(lines)
