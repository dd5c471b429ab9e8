"""Memory per process of each engine (2 processes): SLAM vs full fine-tuning, measured and estimated.

Every run is a real ``torchrun --nproc_per_node 2 -m slam_align train`` (DDP, DeepSpeed
ZeRO-2 / ZeRO-3 with the shipped configs, FSDP2 with ``configs/fsdp/fsdp2.json``) of a
random Llama (fp32, 8 layers, hidden 1024, FFN 2752, vocabulary 1024: 95 M parameters,
380 MB) built here, plus a one-process run for reference; AdamW, 3 steps, micro-batch 2 x
128 tokens per process. SLAM trains the FFN up/down of layers 0-1 (25% of the layers, as
0-5 of 32 in the paper).

Measured, per process, from its *anonymous* resident memory (``RssAnon``, sampled every
5 ms by a thread in the process) minus its value just before ``slam train`` started
(Python, torch, transformers and DeepSpeed imported): the peak while ``Trainer.train`` runs
(the model is loaded by then; wrapping, steps and checkpoints happen inside), the peak over
the whole run (loading, saving ``final/`` and the rebuild from the base included), and what
stays when ``Trainer.train`` returns (weights, optimizer state, the engine's persistent
buffers; gradients are freed). File-backed pages (the safetensors checkpoint, mapped while
loading) are left out: the kernel can drop them. Beside it, ``slam plan --memory``'s
estimate for the same engine (``--gpus 2 --zero Z``, FSDP full shard = ZeRO-3; fp32; the
same micro-batch and sequence length; no gradient checkpointing), its total and its
weights + optimizer states.

    python benchmarks/engine_memory.py --output engine_memory.json     # about 10 minutes on 2 CPU cores

CPU processes only: the GPU's allocator (CUDA context, caching) adds what this cannot see.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENGINES = {
    "single": (None, 0),
    "ddp": ([], 0),
    "zero2": (["--deepspeed", str(REPO / "configs" / "deepspeed" / "zero2.json")], 2),
    "zero3": (["--deepspeed", str(REPO / "configs" / "deepspeed" / "zero3.json")], 3),
    "fsdp2": (
        ["--fsdp", "full_shard auto_wrap", "--fsdp-config", str(REPO / "configs" / "fsdp" / "fsdp2.json")],
        3,
    ),
}
MIB = 1024**2


def _anon_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def worker(out: Path, argv: list[str]) -> int:
    """Run ``slam train ARGV`` in this process, sampling its anonymous memory (all of it, and
    while ``Trainer.train`` runs: the model is loaded then, and the checkpoint save comes after)."""
    import torch  # noqa: F401  (imported before the baseline, as slam train would)
    import transformers

    try:
        import deepspeed  # noqa: F401
    except ImportError:
        pass
    from slam_align.cli import main

    baseline = _anon_bytes()
    peak = {"all": baseline, "train": 0}
    training = threading.Event()
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            now = _anon_bytes()
            peak["all"] = max(peak["all"], now)
            if training.is_set():
                peak["train"] = max(peak["train"], now)
            time.sleep(0.005)

    original = transformers.Trainer.train

    def train(self, *args, **kwargs):
        training.set()
        try:
            return original(self, *args, **kwargs)
        finally:
            training.clear()
            # What stays between steps: weights, optimizer state, the engine's persistent buffers.
            peak["after_training"] = _anon_bytes()

    transformers.Trainer.train = train
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    code = main(["train", *argv])
    stop.set()
    thread.join()
    rank = os.environ.get("RANK", "0")
    (out / f"memory_rank{rank}.json").write_text(json.dumps({"baseline": baseline, **peak}))
    return code


def build_model(folder: Path, hidden: int, layers: int, inter: int) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import _tokenizer_corpus

    from slam_align.models.tiny import build_tiny_model, train_bpe_tokenizer

    tok = train_bpe_tokenizer(_tokenizer_corpus(), vocab_size=1024, output_dir=folder / "tokenizer")
    model = folder / "model"
    build_tiny_model(
        "llama", tok, seed=0, output_dir=model, num_layers=layers, hidden=hidden, intermediate_size=inter
    )
    return model


def write_data(path: Path, n: int) -> Path:
    rows = [
        {
            "instruction": f"Problem {i}: how many apples are left?",
            "output": "Let's think step by step. " + "The farmer sells apples and counts what is left. " * 20,
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def run_one(engine: str, method: str, model: Path, data: Path, folder: Path, a) -> dict:
    extra, _ = ENGINES[engine]
    out = folder / f"{engine}-{method}"
    out.mkdir()
    train_args = [
        "--model", str(model), "--data", str(data), "--output", str(out / "run"), "--method", method,
        "--layers", "0-1", "--max-steps", str(a.steps), "--per-device-train-batch-size", str(a.micro),
        "--cutoff-len", str(a.seq), "--optim", "adamw_torch", "--learning-rate", "1e-4", "--no-progress",
        "--no-save-delta", *(extra or []),
    ]  # fmt: skip
    me = [str(Path(__file__).resolve()), "--worker", str(out), "--"]
    if extra is None:
        cmd = [sys.executable, *me, *train_args]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        cmd += [*me, *train_args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} {method} failed:\n{proc.stderr[-3000:]}")
    ranks = [json.loads(p.read_text()) for p in sorted(out.glob("memory_rank*.json"))]
    timing = json.loads((out / "run" / "timing.json").read_text())
    return {
        "engine": engine,
        "method": method,
        "processes": len(ranks),
        "measured_training_mib": [round((r["train"] - r["baseline"]) / MIB) for r in ranks],
        "measured_whole_run_mib": [round((r["all"] - r["baseline"]) / MIB) for r in ranks],
        "measured_after_training_mib": [round((r["after_training"] - r["baseline"]) / MIB) for r in ranks],
        "trainable_params": timing["trainable_params"],
        "total_params": timing["total_params"],
        "wall_seconds": round(time.perf_counter() - t0, 1),
    }


def estimate(engine: str, method: str, model: Path, a) -> dict:
    from slam_align.models.plan import PlanOptions, plan

    zero = ENGINES[engine][1]
    gpus = 1 if engine == "single" else 2
    options = PlanOptions(
        model=str(model), method=method, layers="0-1", memory=True, gpus=gpus, zero=zero, precision="fp32",
        micro_batch_size=a.micro, seq_len=a.seq, gradient_checkpointing=False,
    )  # fmt: skip
    mem = plan(options)["memory"]
    parts = ("weights", "gradients", "optimizer_states", "activations")
    return {
        "zero": zero,
        **{p: round(mem[p + "_bytes"] / MIB) for p in parts},
        "total": round(mem["total_bytes"] / MIB),
        "weights_and_optimizer": round((mem["weights_bytes"] + mem["optimizer_states_bytes"]) / MIB),
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: " + ",".join(ENGINES))
    p.add_argument("--methods", default="slam,full")
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--inter", type=int, default=2752)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--micro", type=int, default=2, help="micro-batch per process")
    p.add_argument("--seq", type=int, default=128, help="--cutoff-len (the data fills it)")
    p.add_argument("--json", action="store_true", help="print one JSON object (its last line)")
    p.add_argument("--output", help="also write the JSON object to this file")
    a = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="engine-memory-") as tmp:
        folder = Path(tmp)
        model = build_model(folder, a.hidden, a.layers, a.inter)
        data = write_data(folder / "data.jsonl", 2 * a.micro * a.steps)
        for method in a.methods.split(","):
            for engine in a.engines.split(","):
                row = run_one(engine, method, model, data, folder, a)
                row["estimate_mib"] = estimate(engine, method, model, a)
                rows.append(row)
                if not a.json:
                    print(
                        f"{engine:7s} {method:5s} measured {row['measured_training_mib']} MiB per process "
                        f"(whole run {row['measured_whole_run_mib']}, after training "
                        f"{row['measured_after_training_mib']}), "
                        f"estimate {row['estimate_mib']['total']} MiB ({row['wall_seconds']} s)",
                        flush=True,
                    )
    result = {
        "model": f"llama fp32, {a.layers} layers, hidden {a.hidden}, FFN {a.inter}",
        "micro_batch": a.micro,
        "seq_len": a.seq,
        "steps": a.steps,
        "measured": "anonymous RSS per process minus its value before slam train started (MiB): the peak "
        "while Trainer.train ran (training), over the whole run (loading and saving included), and when "
        "Trainer.train returned (after_training)",
        "rows": rows,
    }
    if a.output:
        Path(a.output).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    if a.json:
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        rest = sys.argv[3:]
        sys.exit(worker(Path(sys.argv[2]), rest[1:] if rest[:1] == ["--"] else rest))
    main()
