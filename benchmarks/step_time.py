"""Step time of SLAM vs full fine-tuning through the project's own training step.

Both models go through exactly what ``slam train`` runs: the recipe's freezing plan,
``slam_align.train.trainer.build_trainer`` (the shared Trainer set-up), the Trainer's
optimizer (trainable parameters only), ``Trainer.training_step``, its gradient clipping,
optimizer and scheduler steps: one optimizer step per measured step. A bare-PyTorch
version of each (manual ``requires_grad``, ``torch.optim.AdamW`` on the trainable tensors,
forward / backward / clip / step) is measured beside them for reference.
Measurements are interleaved (round-robin, median of rounds) so that load from other
processes on the machine hits every variant alike.

    python benchmarks/step_time.py --json          # 12-layer Llama, hidden 512, batch 8, seq 256

Peak memory is measured per variant in a fresh child process (CPU: max RSS; GPU: max
allocated), since a process' RSS peak cannot be split between models.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from slam_align.data.tokenize import FeatureDataset  # noqa: E402
from slam_align.models.tiny import tiny_config  # noqa: E402
from slam_align.train.recipes import get_recipe  # noqa: E402
from slam_align.train.train import TrainOptions  # noqa: E402
from slam_align.train.trainer import build_trainer  # noqa: E402


class _Tok:
    """The two tokenizer attributes the collator needs (the step never tokenises text)."""

    pad_token_id = 0
    eos_token_id = 1

    def save_pretrained(self, *a, **k):
        pass


def make_model(args):
    from transformers import AutoModelForCausalLM

    config = tiny_config(
        "llama",
        vocab_size=args.vocab,
        num_layers=args.layers,
        hidden=args.hidden,
        intermediate_size=args.intermediate,
    )
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config)


def make_batch(args, device):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, args.vocab, (args.batch, args.seq), generator=g)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    return {k: v.to(device) for k, v in batch.items()}


class ProjectStep:
    """One optimizer step through the project's Trainer set-up."""

    def __init__(self, method: str, args, out_dir: str):
        options = TrainOptions(
            model="bench",
            output=out_dir,
            method=method,
            layers=args.slam_layers,
            learning_rate=1e-5,
            per_device_train_batch_size=args.batch,
            max_steps=1000,
            progress=False,
            bf16=args.bf16,
            gradient_checkpointing=args.gradient_checkpointing,
            optim=None if args.optim == "default" else args.optim,
        )
        model = make_model(args)
        model, _, frozen = get_recipe(method).prepare(model, options)
        features = [{"input_ids": [2] * args.seq, "labels": [2] * args.seq}] * args.batch
        self.trainer = build_trainer(model, _Tok(), FeatureDataset(features), options, out_dir, frozen=frozen)
        self.trainer.create_optimizer_and_scheduler(num_training_steps=1000)
        self.model = self.trainer.model.to(self.trainer.args.device)
        self.batch = make_batch(args, self.trainer.args.device)
        self.n_items = int((self.batch["labels"][:, 1:] != -100).sum())

    def __call__(self):
        # What Trainer's inner loop does per optimizer step (accumulation 1).
        self.trainer.training_step(self.model, self.batch, self.n_items)
        self.trainer._clip_grad_norm(self.model)
        self.trainer.optimizer.step()
        self.trainer.lr_scheduler.step()
        self.model.zero_grad()


class BareStep:
    """The same arithmetic in plain PyTorch: the floor the project's step is compared to."""

    def __init__(self, method: str, args):
        self.model = make_model(args).to(args.device)
        if method == "slam":
            layers = [
                int(i)
                for i in range(int(args.slam_layers.split("-")[0]), int(args.slam_layers.split("-")[1]) + 1)
            ]
            keep = tuple(f"layers.{i}.mlp.{m}_proj." for i in layers for m in ("up", "down"))
            for name, p in self.model.named_parameters():
                p.requires_grad_(any(k in name for k in keep))
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=1e-5)
        self.batch = make_batch(args, args.device)
        self.model.train()

    def __call__(self):
        with torch.autocast(self.batch["input_ids"].device.type, dtype=torch.bfloat16, enabled=ARGS.bf16):
            loss = self.model(**self.batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)


def sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(step) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one step."""
    sync()
    t0, c0 = time.perf_counter(), time.process_time()
    step()
    sync()
    return time.perf_counter() - t0, time.process_time() - c0


def peak_memory_of(variant: str, method: str, argv: list[str]) -> int:
    """Run a few steps of one variant in a child process; return its peak memory in bytes."""
    cmd = [sys.executable, __file__, *argv, "--worker", f"{variant}:{method}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak_memory_bytes"])


def worker(spec: str, args) -> None:
    variant, method = spec.split(":")
    with tempfile.TemporaryDirectory() as d:
        step = ProjectStep(method, args, d) if variant == "project" else BareStep(method, args)
        for _ in range(2):
            step()
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated()
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak_memory_bytes": int(peak)}))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument(
        "--intermediate", type=int, default=1376, help="FFN width (Llama-2: 11008/4096 = 2.69x hidden)"
    )
    p.add_argument("--vocab", type=int, default=32000, help="vocabulary (Llama-2 and LlamaConfig default)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--slam-layers", default="0-5")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument(
        "--optim",
        default="adamw_torch",
        help="the project's optimizer (slam train --optim). Default adamw_torch: the same algorithm as "
        "the bare reference's torch.optim.AdamW, so the ratio isolates what the trainer adds. With "
        "'default' the Trainer's own choice (adamw_torch_fused)",
    )
    p.add_argument("--no-bare", action="store_true", help="skip the bare-PyTorch reference")
    p.add_argument("--no-memory", action="store_true", help="skip the child processes measuring peak memory")
    p.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="wall",
        help="step time as wall time (default) or this process' CPU time (immune to other processes' "
        "load on a shared machine; use with --threads 1)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    global ARGS
    ARGS = args = p.parse_args(argv)
    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        return worker(args.worker, args)
    passthrough = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--json"]
    # Memory first, in fresh children, while this process is still small: Linux keeps a
    # process' peak RSS across fork+exec, so a child started later would inherit our peak.
    memory = {}
    if not args.no_memory:
        memory["slam_peak_memory_bytes"] = peak_memory_of("project", "slam", passthrough)
        memory["full_peak_memory_bytes"] = peak_memory_of("project", "full", passthrough)
        memory["peak_memory_kind"] = "gpu_max_allocated" if torch.cuda.is_available() else "cpu_max_rss"

    with tempfile.TemporaryDirectory() as d:
        variants = {
            "slam": ProjectStep("slam", args, str(Path(d) / "slam")),
            "full": ProjectStep("full", args, str(Path(d) / "full")),
        }
        if not args.no_bare:
            variants["bare_slam"] = BareStep("slam", args)
            variants["bare_full"] = BareStep("full", args)
        for step in variants.values():
            for _ in range(args.warmup):
                step()
        times: dict[str, list[float]] = {k: [] for k in variants}
        walls: dict[str, list[float]] = {k: [] for k in variants}
        for r in range(args.rounds):
            # Round-robin, alternating the order, so background load is shared fairly.
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                wall, cpu = timed(variants[name])
                walls[name].append(wall)
                times[name].append(cpu if args.clock == "cpu" else wall)
        trainable = {
            k: sum(p.numel() for p in variants[k].model.parameters() if p.requires_grad)
            for k in ("slam", "full")
        }
        opt_params = {
            k: sum(p.numel() for g in variants[k].trainer.optimizer.param_groups for p in g["params"])
            for k in ("slam", "full")
        }
    variants_optim = getattr(
        variants["slam"].trainer.args.optim, "value", variants["slam"].trainer.args.optim
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    result = {
        "model": f"llama {args.layers} layers, hidden {args.hidden}, ffn {args.intermediate}, vocab {args.vocab}",
        "batch": args.batch,
        "seq": args.seq,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
        "slam_layers": args.slam_layers,
        "slam_step_seconds": med["slam"],
        "full_step_seconds": med["full"],
        "slam_over_full_step_time": med["slam"] / med["full"],
        "slam_over_full_step_time_min": best["slam"] / best["full"],
        "slam_trainable_params": trainable["slam"],
        "full_trainable_params": trainable["full"],
        "slam_optimizer_params": opt_params["slam"],
        "full_optimizer_params": opt_params["full"],
        "rounds": args.rounds,
        "clock": args.clock,
        "step_seconds_all": times,
        "wall_seconds_all": walls,
    }
    if not args.no_bare:
        result["bare_slam_step_seconds"] = med["bare_slam"]
        result["bare_full_step_seconds"] = med["bare_full"]
        result["bare_slam_over_full_step_time"] = med["bare_slam"] / med["bare_full"]
        # The project's overhead over the same arithmetic, per method (1.0 = none).
        result["slam_over_bare_slam_step_time"] = med["slam"] / med["bare_slam"]
        result["full_over_bare_full_step_time"] = med["full"] / med["bare_full"]
        result["project_optimizer"] = str(variants_optim)
        result["bare_optimizer"] = "torch.optim.AdamW (defaults)"
    result.update(memory)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return result


ARGS = None

if __name__ == "__main__":
    main()
