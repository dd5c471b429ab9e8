"""What a training run leaves beside the model: loss curve, plot and README."""

from __future__ import annotations

from pathlib import Path

from slam_align.io import write_run_readme
from slam_align.plotting import pyplot, save_figure


def loss_curve(log_history: list[dict]) -> list[dict]:
    """The Trainer's log entries that carry a training loss, reduced to plain numbers."""
    keep = ("step", "epoch", "loss", "learning_rate", "grad_norm", "num_input_tokens_seen")
    return [{k: e[k] for k in keep if k in e} for e in log_history if "loss" in e]


def eval_curve(log_history: list[dict]) -> list[dict]:
    """The Trainer's evaluation entries (``--val-size``): step and validation loss."""
    return [{"step": e["step"], "eval_loss": e["eval_loss"]} for e in log_history if "eval_loss" in e]


def plot_losses(
    curves: dict[str, list[dict]],
    path: str | Path,
    title: str,
    eval_curves: dict[str, list[dict]] | None = None,
) -> Path | None:
    """One line per stage (and per stage's validation loss); steps continue across stages so
    two-stage reads left to right."""
    if not any(curves.values()):
        return None
    eval_curves = eval_curves or {}
    fig, ax = pyplot().subplots(figsize=(6, 3.5))
    offset = 0
    for stage, curve in curves.items():
        if curve:
            ax.plot([offset + e["step"] for e in curve], [e["loss"] for e in curve], marker=".", label=stage)
            val = eval_curves.get(stage) or []
            if val:
                steps = [offset + e["step"] for e in val]
                ax.plot(
                    steps, [e["eval_loss"] for e in val], marker="o", ls="--", label=f"{stage} validation"
                )
            offset += curve[-1]["step"]
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (response tokens)")
    ax.set_title(title)
    if len(curves) > 1 or any(eval_curves.values()):
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def write_readme(out: Path, options, timing: dict, plan_summary: dict) -> None:
    stages = "\n".join(
        f"| {name} | {s['steps']} | {s['wall_seconds']:.1f} | {s['tokens_seen']} | {s['tokens_per_second']:.0f} | "
        f"{s.get('final_loss', float('nan')):.4f} |"
        for name, s in timing["stages"].items()
    )
    frac = timing["trainable_fraction"]
    write_run_readme(
        out / "README.md",
        f"slam train: {options.method} on {options.model}",
        {
            "Model": f"`final/` (Transformers directory, base dtype {timing['base_dtype']}); "
            f"trainable {timing['trainable_params']:,} of {timing['total_params']:,} parameters ({frac:.2%}).",
            "Plan": ", ".join(f"{k}: {v}" for k, v in plan_summary.items()),
            "Stages": "| stage | steps | seconds | tokens | tokens/s | final loss |\n|---|---|---|---|---|---|\n"
            + stages,
            "Files": "`config.yaml` options used (`slam train config.yaml --output NEW` reruns them); "
            "`run.json` status; `environment.json` versions; `timing.json` time, tokens, memory; "
            "`metrics.json` loss curve; `loss.png`; `final/slam_train.json` what trained this model; "
            "`final/slam_delta.safetensors` only the trained tensors (subset methods; "
            "`slam merge --base BASE --delta final/slam_delta.safetensors --output DIR` rebuilds the model).",
        },
    )
