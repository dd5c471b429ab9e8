"""Real (non-padding) tokens per second of ``slam train``: padded vs length-grouped vs packed.

The same model (a randomly initialised 8-layer Llama, hidden 256, built from a config),
the same data (the shared-sample mixture, ``configs/data/shared-sample.yaml``, built from
``../shared/data``), the same steps, micro-batch and cutoff, through ``slam train`` itself:
each mode is one ``python -m slam_align train`` child process (so each peak memory is the
mode's own), in interleaved rounds so that load from other processes hits every mode alike
(median of the rounds). Per mode: real tokens per second (``timing.json``'s tokens seen over
the training wall time), the padding share of the positions computed, the final training
loss, the validation loss at the last step on the same held-out examples (``--val-size``:
the like-for-like loss, since packing puts more examples in a step), and peak memory (CPU:
max RSS of the child; GPU: max allocated).

    python benchmarks/throughput.py --json                   # 30 steps, micro-batch 4, cutoff 512
    python benchmarks/throughput.py --json --steps 5 --rounds 1   # a quick look

If LLaMA-Factory is importable by ``--llamafactory-python`` (default: this interpreter), it
would also be run on the same data; otherwise the JSON says why it was skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("SLAM_SHARED_DATA", ROOT.parent / "shared" / "data"))
MODES = {"padded": [], "grouped": ["--group-by-length"], "packed": ["--packing"]}


def build_mixture(out: Path) -> Path:
    """``slam data build configs/data/shared-sample.yaml`` (its paths are relative to the repo root)."""
    cmd = [sys.executable, "-m", "slam_align", "data", "build", "configs/data/shared-sample.yaml"]
    subprocess.run([*cmd, "--output", str(out)], cwd=ROOT, check=True, capture_output=True, text=True)
    return out / "train.jsonl"


def build_model(data: Path, out: Path, args) -> Path:
    """A BPE tokenizer trained on the mixture's text and a random Llama of the benchmark's size."""
    from slam_align.models.tiny import build_tiny_model, train_bpe_tokenizer

    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    texts = [r["instruction"] + "\n" + r.get("input", "") + "\n" + r["output"] for r in rows]
    tok = train_bpe_tokenizer(texts, vocab_size=args.vocab, output_dir=out)
    build_tiny_model("llama", tok, seed=0, output_dir=out, num_layers=args.layers, hidden=args.hidden)
    return out


def train_once(model: Path, data: Path, out: Path, mode: str, args) -> dict:
    cmd = [
        sys.executable, "-m", "slam_align", "train", "--model", str(model), "--data", str(data),
        "--output", str(out), "--method", args.method, "--max-steps", str(args.steps),
        "--per-device-train-batch-size", str(args.batch), "--cutoff-len", str(args.cutoff),
        "--learning-rate", str(args.learning_rate), "--seed", "0", "--val-size", str(args.val_size),
        "--eval-steps", str(args.steps), "--no-progress", "--no-save-delta", "--overwrite", *MODES[mode],
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{mode}: slam train failed: {proc.stderr.strip().splitlines()[-1:]}")
    timing = json.loads((out / "timing.json").read_text())
    stage = timing["stages"]["train"]
    metrics = json.loads((out / "metrics.json").read_text())
    curve = metrics["loss_curve"]["train"]
    evals = metrics.get("eval_loss_curve", {}).get("train", [])
    return {
        "real_tokens_per_second": stage["tokens_per_second"],
        "real_tokens": stage["tokens_seen"],
        "positions_computed": stage["positions_computed"],
        "padding_share": stage["padding_share"],
        "wall_seconds": stage["wall_seconds"],
        "final_loss": stage["final_loss"],
        "mean_loss_last_5_steps": statistics.fmean(e["loss"] for e in curve[-5:]),
        "final_validation_loss": evals[-1]["eval_loss"] if evals else None,
        "peak_memory_bytes": timing["peak_memory_bytes"],
        "peak_memory_kind": timing["peak_memory_kind"],
    }


def llamafactory_status(python: str) -> dict:
    proc = subprocess.run([python, "-c", "import llamafactory"], capture_output=True, text=True)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["not importable"])[-1]
        return {"skipped": f"LLaMA-Factory is not importable by {python} ({last})"}
    return {"skipped": "LLaMA-Factory is importable, but running it is not implemented in this benchmark"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=4, help="micro-batch (examples padded; rows packed)")
    p.add_argument("--cutoff", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--vocab", type=int, default=8000, help="BPE vocabulary trained on the mixture")
    p.add_argument("--method", default="slam")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--val-size", type=float, default=0.02)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--llamafactory-python", default=sys.executable)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args()
    if not (SHARED / "train-samples").is_dir():
        print(json.dumps({"skipped": f"shared data not found at {SHARED} (set SLAM_SHARED_DATA)"}))
        return
    # Libraries print to stdout on import (DeepSpeed's accelerator line): keep stdout one JSON line.
    with (
        contextlib.redirect_stdout(sys.stderr),
        tempfile.TemporaryDirectory(prefix="slam-throughput-") as tmp,
    ):
        tmp = Path(tmp)
        data = build_mixture(tmp / "mix")
        model = build_model(data, tmp / "model", args)
        runs: dict[str, list[dict]] = {m: [] for m in MODES}
        for _ in range(args.rounds):
            for mode in MODES:
                runs[mode].append(train_once(model, data, tmp / mode, mode, args))
    result: dict = {
        "settings": {k: v for k, v in vars(args).items() if k not in ("json", "llamafactory_python")}
    }
    for mode, rs in runs.items():
        best = dict(rs[0])
        best["real_tokens_per_second"] = statistics.median(r["real_tokens_per_second"] for r in rs)
        best["real_tokens_per_second_rounds"] = [round(r["real_tokens_per_second"], 1) for r in rs]
        best["peak_memory_bytes"] = max(r["peak_memory_bytes"] for r in rs)
        result[mode] = best
    padded = result["padded"]["real_tokens_per_second"]
    result["packed_over_padded_tokens_per_second"] = result["packed"]["real_tokens_per_second"] / padded
    result["grouped_over_padded_tokens_per_second"] = result["grouped"]["real_tokens_per_second"] / padded
    result["llamafactory"] = llamafactory_status(args.llamafactory_python)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
