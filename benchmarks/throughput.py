"""Real (non-padding) tokens per second of ``slam train``: padded vs length-grouped vs packed.

The same model (a randomly initialised 8-layer Llama, hidden 256, built from a config),
the same data (the shared-sample mixture, ``configs/data/shared-sample.yaml``, built from
``../shared/data``), the same steps, micro-batch and cutoff, through ``slam train`` itself:
each mode is one ``python -m slam_align train`` child process (so each peak memory is the
mode's own), in interleaved rounds so that load from other processes hits every mode alike
(median of the rounds). Per mode: real tokens per second (``timing.json``'s tokens seen over
the training wall time) and per CPU second of training (``--clock cpu`` takes the ratio keys
from it: other jobs on a shared machine inflate wall time, not a process' CPU time), a
peak memory of one step at the same token budget per batch form, the padding share of the positions computed, the final training
loss, the validation loss at the last step on the same held-out examples (``--val-size``:
the like-for-like loss, since packing puts more examples in a step), and peak memory (CPU:
max RSS of the child; GPU: max allocated).

    python benchmarks/throughput.py --json                   # 30 steps, micro-batch 4, cutoff 512
    python benchmarks/throughput.py --json --steps 5 --rounds 1   # a quick look

The trained parameters are the MLPs (gate, up, down: ``--modules ffn-all``) of the first
``--trained-layers`` layers, which is what LLaMA-Factory's freeze mode trains with
``freeze_trainable_layers: -N, freeze_trainable_modules: mlp``: if LLaMA-Factory imports in
``--llamafactory-python`` (it is not a dependency; a separate venv, see docs/training.md), it
is run the same way in the same rounds with its defaults otherwise (no packing, no length
grouping) and LLaMA-Factory 0.5.3's ``default`` template, registered at run time, against
``--prompt llamafactory-default``; else the JSON says why it was skipped.
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
        "--output", str(out), "--method", args.method, "--modules", args.modules, "--layers", f"0-{args.trained_layers - 1}", "--max-steps", str(args.steps),
        "--per-device-train-batch-size", str(args.batch), "--cutoff-len", str(args.cutoff),
        "--learning-rate", str(args.learning_rate), "--seed", "0", "--prompt", args.prompt, "--val-size", str(args.val_size),
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
        "real_tokens_per_cpu_second": stage["tokens_seen"] / stage["cpu_seconds"],
        "real_tokens": stage["tokens_seen"],
        "positions_computed": stage["positions_computed"],
        "padding_share": stage["padding_share"],
        "wall_seconds": stage["wall_seconds"],
        "cpu_seconds": stage["cpu_seconds"],
        "final_loss": stage["final_loss"],
        "mean_loss_last_5_steps": statistics.fmean(e["loss"] for e in curve[-5:]),
        "final_validation_loss": evals[-1]["eval_loss"] if evals else None,
        "peak_memory_bytes": timing["peak_memory_bytes"],
        "peak_memory_kind": timing["peak_memory_kind"],
    }


# Run inside LLaMA-Factory's environment: register LLaMA-Factory 0.5.3's `default` template
# (the official SLAM code's; 0.9.5's `default` differs) and train; print the peak RSS last.
_LF_SCRIPT = """
import json, resource, sys
from llamafactory.data.formatter import StringFormatter
from llamafactory.data.template import register_template
from llamafactory.train.tuner import run_exp
import time
from transformers import TrainerCallback
class CpuClock(TrainerCallback):
    def on_train_begin(self, *a, **k):
        self.t0 = time.process_time()
    def on_train_end(self, *a, **k):
        print("TRAIN_CPU_SECONDS", time.process_time() - self.t0)
register_template(
    name="default_053",
    format_user=StringFormatter(slots=["Human: {{content}}\\nAssistant: "]),
    format_assistant=StringFormatter(slots=["{{content}}", {"eos_token"}]),
)
run_exp(json.loads(sys.argv[1]), callbacks=[CpuClock()])
print("PEAK_RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


# One forward + backward at the full micro-batch budget (batch x cutoff positions) in a fresh
# process; prints the peak RSS above the loaded model's, in bytes.
_MEMORY_SCRIPT = """
import resource, sys, torch
from transformers import AutoModelForCausalLM
from slam_align.data.packing import REAL_TOKENS, PackedCollator
from slam_align.data.tokenize import MaskedCollator
form, model, batch, cutoff = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
m = AutoModelForCausalLM.from_pretrained(model)
g = torch.Generator().manual_seed(0)
def ex(n):
    ids = torch.randint(3, m.config.vocab_size, (n,), generator=g).tolist()
    return {"input_ids": ids, "labels": [-100] * (n // 8) + ids[n // 8:]}
if form == "padded_without_padding":
    b = MaskedCollator(0)([ex(cutoff) for _ in range(batch)])
elif form == "padded_with_padding":
    b = MaskedCollator(0)([ex(cutoff)] + [ex(cutoff * 3 // 5) for _ in range(batch - 1)])
else:
    b = PackedCollator(0)([[ex(cutoff // 2), ex(cutoff - cutoff // 2)] for _ in range(batch)])
b.pop(REAL_TOKENS, None)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for _ in range(2):
    m(**b).loss.backward()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
"""
MEMORY_FORMS = ("padded_without_padding", "padded_with_padding", "packed")


def same_budget_memory(model: Path, args) -> dict:
    """Peak RSS above the loaded model of one step at ``batch x cutoff`` positions per form
    (CPU): the like-for-like memory comparison, since a packed step is always at that budget."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    out = {}
    for form in MEMORY_FORMS:
        cmd = [sys.executable, "-c", _MEMORY_SCRIPT, form, str(model), str(args.batch), str(args.cutoff)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        out[form] = int(proc.stdout.strip().splitlines()[-1])
    out["packed_over_padded_with_padding"] = out["packed"] / out["padded_with_padding"]
    out["packed_over_padded_without_padding"] = out["packed"] / out["padded_without_padding"]
    return out


def llamafactory_python(python: str) -> tuple[str | None, str]:
    """(python, "") if LLaMA-Factory imports there, else (None, why)."""
    proc = subprocess.run([python, "-c", "import llamafactory"], capture_output=True, text=True)
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or ["not importable"])[-1]
        return None, f"LLaMA-Factory is not importable by {python} ({last})"
    return python, ""


def train_llamafactory(python: str, model: Path, data: Path, out: Path, args) -> dict:
    """LLaMA-Factory's SFT with its defaults (no packing, no length grouping) in freeze mode on
    the nearest plan to SLAM's (first --trained-layers layers' MLPs), same data, steps, batch, cutoff."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "dataset_info.json").write_text(json.dumps({"mix": {"file_name": str(data)}}))
    config = {
        "model_name_or_path": str(model), "stage": "sft", "do_train": True, "finetuning_type": "freeze",
        "freeze_trainable_layers": -args.trained_layers, "freeze_trainable_modules": "mlp",
        "dataset": "mix", "dataset_dir": str(out), "template": "default_053", "cutoff_len": args.cutoff,
        "per_device_train_batch_size": args.batch, "gradient_accumulation_steps": 1,
        "max_steps": args.steps, "learning_rate": args.learning_rate, "lr_scheduler_type": "cosine",
        "logging_steps": 1, "output_dir": str(out / "run"), "overwrite_output_dir": True,
        "save_strategy": "no", "report_to": "none", "seed": 0, "disable_tqdm": True,
        "include_num_input_tokens_seen": "non_padding", "overwrite_cache": True,
    }  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
    if args.lf_pythonpath:
        env["PYTHONPATH"] = args.lf_pythonpath
    proc = subprocess.run(
        [python, "-c", _LF_SCRIPT, json.dumps(config)], env=env, capture_output=True, text=True
    )
    if proc.returncode:
        raise SystemExit(f"LLaMA-Factory failed: {proc.stderr.strip().splitlines()[-3:]}")
    state = json.loads((out / "run" / "trainer_state.json").read_text())
    results = json.loads((out / "run" / "train_results.json").read_text())
    losses = [e for e in state["log_history"] if "loss" in e]
    tokens = max(e.get("num_input_tokens_seen", 0) for e in state["log_history"])
    peak = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("PEAK_RSS")]
    cpu = [
        float(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("TRAIN_CPU_SECONDS")
    ]
    return {
        "real_tokens_per_second": tokens / results["train_runtime"],
        "real_tokens_per_cpu_second": tokens / cpu[-1],
        "cpu_seconds": cpu[-1],
        "real_tokens": tokens,
        "wall_seconds": results["train_runtime"],
        "final_loss": losses[-1]["loss"],
        "mean_loss_last_5_steps": statistics.fmean(e["loss"] for e in losses[-5:]),
        "peak_memory_bytes": peak[-1] if peak else None,
        "peak_memory_kind": "cpu_max_rss",
        "plan": f"freeze: MLP (gate, up, down) of the first {args.trained_layers} layers",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch", type=int, default=4, help="micro-batch (examples padded; rows packed)")
    p.add_argument("--cutoff", type=int, default=512)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--vocab", type=int, default=8000, help="BPE vocabulary trained on the mixture")
    p.add_argument("--method", default="slam")
    p.add_argument(
        "--modules",
        default="ffn-all",
        help="slam --modules: ffn-all trains what LLaMA-Factory's freeze mode does",
    )
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--val-size", type=float, default=0.02)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="ratios from wall time, or from each run's CPU time in training (use with --threads 1 "
        "and --val-size 0 on a machine shared with other jobs)",
    )
    p.add_argument("--llamafactory-python", default=sys.executable, help="an interpreter with LLaMA-Factory")
    p.add_argument("--lf-pythonpath", default="", help="PYTHONPATH for it (e.g. a torchaudio stub)")
    p.add_argument("--trained-layers", type=int, default=6, help="trained layers: the first N (both tools)")
    p.add_argument(
        "--prompt", default="llamafactory-default", help="slam train --prompt (LLaMA-Factory 0.5.3's)"
    )
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
        memory = same_budget_memory(model, args)
        lf_python, lf_skipped = llamafactory_python(args.llamafactory_python)
        modes = [*MODES, "llamafactory"] if lf_python else list(MODES)
        runs: dict[str, list[dict]] = {m: [] for m in modes}
        for _ in range(args.rounds):
            for mode in modes:
                if mode == "llamafactory":
                    if lf_python is None:  # failed in an earlier round
                        continue
                    try:
                        runs[mode].append(train_llamafactory(lf_python, model, data, tmp / mode, args))
                    except (SystemExit, OSError, ValueError, KeyError) as e:  # the optional part
                        lf_python, lf_skipped = None, f"LLaMA-Factory run failed: {e}"
                else:
                    runs[mode].append(train_once(model, data, tmp / mode, mode, args))
    result: dict = {"settings": {k: v for k, v in vars(args).items() if k not in ("json", "lf_pythonpath")}}
    for mode, rs in runs.items():
        if not rs:
            continue
        best = dict(rs[0])
        best["real_tokens_per_second"] = statistics.median(r["real_tokens_per_second"] for r in rs)
        best["real_tokens_per_second_rounds"] = [round(r["real_tokens_per_second"], 1) for r in rs]
        best["real_tokens_per_cpu_second"] = statistics.median(r["real_tokens_per_cpu_second"] for r in rs)
        best["peak_memory_bytes"] = max(r["peak_memory_bytes"] for r in rs)
        result[mode] = best
    # The ratio keys use the clock chosen by --clock; both figures are in each mode's entry.
    key = "real_tokens_per_cpu_second" if args.clock == "cpu" else "real_tokens_per_second"
    padded = result["padded"][key]
    result["packed_over_padded_tokens_per_second"] = result["packed"][key] / padded
    result["grouped_over_padded_tokens_per_second"] = result["grouped"][key] / padded
    result["same_budget_step_peak_rss_above_model_bytes"] = memory
    if lf_python:
        lf = result["llamafactory"][key]
        result["packed_over_llamafactory_tokens_per_second"] = result["packed"][key] / lf
        result["padded_over_llamafactory_tokens_per_second"] = padded / lf
    else:
        result["llamafactory"] = {"skipped": lf_skipped}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
