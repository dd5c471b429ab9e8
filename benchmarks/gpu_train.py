"""GPU proof: speed and peak memory of SLAM vs full fine-tuning on a Llama-2-sized model.

Each method runs in its own child process (an out-of-memory error cannot poison the next
method, and each peak is the method's own) through ``slam train``'s code path: the
recipe's freezing plan (``slam_align.train.recipes``), the prompt-masked tokenisation and
collator (``slam_align.data.tokenize``) and the shared Trainer set-up
(``slam_align.train.trainer.build_trainer``: Transformers ``Trainer``, AdamW over the
trainable parameters only, gradient checkpointing). The one difference from
``train(TrainOptions(...))`` is where the model comes from: a randomly initialised model
built directly on the device in its training dtype (seconds) instead of a checkpoint on
disk (a 13B checkpoint is 26 GB to write and read back; speed and memory do not depend on
the weights' values), and no final model is saved.

    python benchmarks/gpu_train.py --config tiny --steps 2 --seq-len 64      # CPU dry run
    python benchmarks/gpu_train.py --config llama2-7b --steps 8 --output gpu-7b.json

Prints one JSON object (and writes it atomically to ``--output``): the device, versions,
settings, and per method the step times, tokens/s, peak memory (GPU: max allocated; CPU:
max RSS of the child), trainable parameters, ``slam plan --memory``'s estimate for the
same settings and measured - estimated. A method that runs out of memory is recorded as
``"status": "oom"`` with the error. See docs/gpu.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIB = 1024**3

# The real Llama-2 shapes (meta-llama/Llama-2-7b-hf and -13b-hf config.json), and a tiny
# Llama with the same proportions for the CPU dry run.
LLAMA2 = dict(
    hidden_act="silu",
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    attention_bias=False,
    vocab_size=32000,
    max_position_embeddings=4096,
)
CONFIGS = {
    "tiny": dict(
        LLAMA2,
        hidden_size=64,
        intermediate_size=172,
        num_hidden_layers=8,
        num_attention_heads=4,
        num_key_value_heads=4,
        vocab_size=512,
        max_position_embeddings=2048,
    ),
    "llama2-7b": dict(
        LLAMA2,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
    ),
    "llama2-13b": dict(
        LLAMA2,
        hidden_size=5120,
        intermediate_size=13824,
        num_hidden_layers=40,
        num_attention_heads=40,
        num_key_value_heads=40,
    ),
}
# Single-stage recipes only: two-stage needs two data sets and is two of these runs.
METHODS = ("slam", "full", "lora", "attention", "random")
TOKENIZER_VOCAB = 512
INSTRUCTION = "Repeat these words."


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", choices=list(CONFIGS), default="tiny", help="model architecture")
    p.add_argument("--methods", default="slam,full", help="comma-separated: " + ", ".join(METHODS))
    p.add_argument("--layers", default="0-5", help="layers of slam / attention / lora")
    p.add_argument("--micro-batch-size", type=int, default=1, help="sequences per step")
    p.add_argument("--seq-len", type=int, default=1024, help="tokens per sequence (every one full)")
    p.add_argument("--steps", type=int, default=5, help="timed optimizer steps")
    p.add_argument("--warmup-steps", type=int, default=1, help="untimed steps before them")
    p.add_argument(
        "--dtype",
        choices=["bfloat16", "float32"],
        default="bfloat16",
        help="weights' dtype (bfloat16: AdamW states are bf16 too, as in slam train --dtype bfloat16)",
    )
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast (slam train --bf16); default: on with CUDA",
    )
    p.add_argument(
        "--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True, help="recompute"
    )
    p.add_argument(
        "--prompt",
        default="llamafactory-default",
        help="prompt template (the official SLAM code's; its prompt is a few tokens, the rest is response)",
    )
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--method-timeout", type=float, default=900, help="seconds per method's child process")
    p.add_argument("--output", help="also write the JSON here (atomically)")
    p.add_argument("--table", nargs="+", metavar="JSON", help="print earlier reports as a Markdown table")
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: run one method
    p.add_argument("--child-output", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        p.error(f"--methods: unknown {bad or 'empty list'}; expected some of: {', '.join(METHODS)}")
    args.method_list = methods
    for name in ("micro_batch_size", "seq_len", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.warmup_steps < 0:
        p.error(f"--warmup-steps must be at least 0, got {args.warmup_steps}")
    return args


# ----------------------------------------------------------------------------- model and data


def model_config(name: str):
    """The ``LlamaConfig`` of ``--config name``; special token ids as Llama-2's (bos 1, eos 2)."""
    from transformers import LlamaConfig

    # The benchmark tokenizer's ids: <pad> 0, <s> 1, </s> 2, <unk> 3 (slam_align.models.tiny).
    return LlamaConfig(**CONFIGS[name], pad_token_id=0, bos_token_id=1, eos_token_id=2)


def _random_words(rng: random.Random, n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 7))) for _ in range(n)]


def make_tokenizer(seed: int, prompt: str):
    """A real byte-level BPE tokenizer trained on random words and the prompt (no download),
    so that the prompt is a few tokens and nearly every position is response."""
    from slam_align.data.prompts import get_prompt
    from slam_align.models.tiny import train_bpe_tokenizer

    rng = random.Random(seed)
    words = _random_words(rng, 400)
    texts = [" ".join(rng.choice(words) for _ in range(50)) for _ in range(200)]
    texts += [get_prompt(prompt).render(INSTRUCTION)] * 200
    return train_bpe_tokenizer(texts, vocab_size=TOKENIZER_VOCAB), words


def write_synthetic_data(path: Path, words: list[str], rows: int, seq_len: int, seed: int) -> None:
    """Alpaca JSONL rows whose response has >= seq_len words, so that every example is cut
    at exactly seq_len tokens (each word is at least one token)."""
    from slam_align.io import atomic_write_jsonl

    rng = random.Random(seed + 1)
    atomic_write_jsonl(
        path,
        [
            {
                "instruction": INSTRUCTION,
                "output": " ".join(rng.choice(words) for _ in range(seq_len)),
            }
            for _ in range(rows)
        ],
    )


def synthetic_features(
    work: Path, tokenizer, words, rows: int, seq_len: int, seed: int, prompt: str
) -> list[dict]:
    """The training file read and tokenised exactly as ``slam train`` does."""
    from slam_align.data.mixing import read_training_files
    from slam_align.data.prompts import get_prompt
    from slam_align.data.tokenize import tokenize_examples

    path = work / "train.jsonl"
    write_synthetic_data(path, words, rows, seq_len, seed)
    examples = read_training_files([str(path)])
    features, dropped = tokenize_examples(examples, tokenizer, get_prompt(prompt), seq_len)
    lengths = {len(f["input_ids"]) for f in features}
    if dropped or len(features) != rows or lengths != {seq_len}:
        raise RuntimeError(
            f"synthetic data: expected {rows} rows of exactly {seq_len} tokens, got {len(features)} rows "
            f"of lengths {sorted(lengths)} ({dropped} dropped: the prompt alone fills --seq-len?)"
        )
    return features


def estimate_precision(dtype: str) -> str:
    """``slam plan --precision`` matching what the Trainer holds for weights of ``dtype``:
    bf16 weights -> bf16 AdamW states, no fp32 master copy (``bf16-pure``); fp32 -> ``fp32``."""
    return "fp32" if dtype == "float32" else "bf16-pure"


def plan_estimate(
    config_json: Path, args, method: str, gpu_memory_gib: float, precision: str | None = None
) -> dict:
    """``slam plan --model CONFIG --method M --layers L --memory ...`` for the same settings."""
    from slam_align.models.plan import PlanOptions, plan

    result = plan(
        PlanOptions(
            model=str(config_json),
            method=method,
            layers=args.layers,
            memory=True,
            gpus=1,
            micro_batch_size=args.micro_batch_size,
            seq_len=args.seq_len,
            zero=0,
            precision=precision or estimate_precision(args.dtype),
            gradient_checkpointing=args.gradient_checkpointing,
            gpu_memory_gib=gpu_memory_gib,
        )
    )
    keys = ("total_params", "trainable_params", "trainable_fraction", "layers", "modules")
    return {**{k: result[k] for k in keys}, "memory": result["memory"]}


# ----------------------------------------------------------------------------- one method (child)


def _step_timer(sync):
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall clock at the end of each optimizer step (after a device sync)."""

        def __init__(self):
            self.start = None
            self.ends: list[float] = []

        def on_train_begin(self, args, state, control, **kwargs):
            sync()
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            sync()
            self.ends.append(time.perf_counter())

        def durations(self) -> list[float]:
            marks = [self.start, *self.ends]
            return [b - a for a, b in zip(marks, marks[1:])]

    return StepTimer()


def _device_info(torch, device: str) -> dict:
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        return {"type": "cuda", "name": props.name, "total_memory_bytes": int(props.total_memory)}
    import platform

    return {
        "type": "cpu",
        "name": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:500]


def _out_of_memory(torch, e: BaseException) -> bool:
    """A device allocation failure, however the library reports it (cuBLAS names its own)."""
    oom = getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError
    if isinstance(e, oom | MemoryError):
        return True
    text = str(e)
    return "out of memory" in text.lower() or "ALLOC_FAILED" in text


def run_child(args) -> int:
    """Build the model, train ``args.child`` for warm-up + steps, write the result JSON."""
    with tempfile.TemporaryDirectory(prefix="gpu_train_") as tmp:
        return _run_child(args, Path(tmp))


def _run_child(args, work: Path) -> int:
    import torch
    import transformers

    from slam_align.data.tokenize import FeatureDataset
    from slam_align.io import atomic_write_json, environment_versions
    from slam_align.models.accounting import count_parameters
    from slam_align.train.recipes import get_recipe
    from slam_align.train.train import TrainOptions
    from slam_align.train.trainer import build_trainer, optimizer_state_bytes, peak_memory

    method = args.child
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    cuda = device == "cuda"
    bf16 = cuda if args.bf16 is None else args.bf16
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    info = _device_info(torch, device)
    gpu_gib = info["total_memory_bytes"] / GIB if cuda else 80.0
    result: dict = {"method": method, "status": "started", "device": info, "bf16_autocast": bf16}
    # The imported modules' own versions (a carried wheel on PYTHONPATH can shadow the metadata).
    result["versions"] = {
        **environment_versions(),
        "torch_runtime": torch.__version__,
        "transformers_runtime": transformers.__version__,
    }

    def save():
        atomic_write_json(args.child_output, result)

    stage = "prepare data"
    try:
        tokenizer, words = make_tokenizer(args.seed, args.prompt)
        config = model_config(args.config)
        config.save_pretrained(str(work / "model"))  # config.json only: what slam plan reads
        config_json = work / "model" / "config.json"
        result["estimate"] = plan_estimate(config_json, args, method, gpu_gib)
        if result["estimate"]["memory"]["precision"] != "bf16" and args.dtype == "bfloat16":
            # What `slam plan --memory` says with its default --precision bf16 (fp32 master + states).
            result["estimate_precision_bf16"] = plan_estimate(config_json, args, method, gpu_gib, "bf16")[
                "memory"
            ]
        steps = args.warmup_steps + args.steps
        rows = steps * args.micro_batch_size
        features = synthetic_features(work, tokenizer, words, rows, args.seq_len, args.seed, args.prompt)
        save()  # the estimate survives even if the child is killed below

        stage = "build model"
        t0 = time.perf_counter()
        torch.manual_seed(args.seed)
        from transformers import AutoModelForCausalLM

        # Built where it trains, in its training dtype: no fp32 CPU copy of 13B parameters.
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, args.dtype))
        sync()
        result["model_build_seconds"] = time.perf_counter() - t0
        result["weights_bytes_measured"] = sum(p.numel() * p.element_size() for p in model.parameters())
        if cuda:
            result["model_build_peak_bytes"] = int(torch.cuda.max_memory_allocated())
            torch.cuda.reset_peak_memory_stats()  # from here: the training peak (weights included)

        stage = "prepare trainer"
        options = TrainOptions(
            model=str(work / "model"),
            output=str(work / "run"),
            method=method,
            layers=args.layers,
            prompt=args.prompt,
            max_steps=steps,
            learning_rate=args.learning_rate,
            per_device_train_batch_size=args.micro_batch_size,
            gradient_accumulation_steps=1,
            seed=args.seed,
            dtype=args.dtype,
            bf16=bf16,
            gradient_checkpointing=args.gradient_checkpointing,
            cutoff_len=args.seq_len,
            save_steps=0,
            logging_steps=1,
            progress=False,
        )
        model, plan, frozen = get_recipe(method).prepare(model, options)
        result.update(count_parameters(model, plan))
        trainer = build_trainer(
            model, tokenizer, FeatureDataset(features), options, work / "run", frozen=frozen
        )
        timer = _step_timer(sync)
        trainer.add_callback(timer)

        stage = "train"
        trainer.train()
        sync()
    except Exception as e:
        if not _out_of_memory(torch, e):
            result.update(
                status="error", stage=stage, error=_first_line(e), traceback=traceback.format_exc()[-3000:]
            )
            save()
            return 1
        result.update(status="oom", stage=stage, error=_first_line(e), **peak_memory())
        if cuda:
            result["peak_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
        save()
        return 0

    durations = timer.durations()
    timed = durations[args.warmup_steps :]
    tokens_per_step = args.micro_batch_size * args.seq_len
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    result.update(
        status="ok",
        steps_run=int(trainer.state.global_step),
        warmup_step_seconds=durations[: args.warmup_steps],
        step_seconds=timed,
        step_time_s=statistics.mean(timed),
        step_time_median_s=statistics.median(timed),
        tokens_per_step=tokens_per_step,
        tokens_per_second=tokens_per_step * len(timed) / sum(timed),
        tokens_seen=int(trainer.state.num_input_tokens_seen or 0),
        losses=losses,
        losses_finite=all(math.isfinite(x) for x in losses),
        gradient_checkpointing_active=bool(getattr(model, "is_gradient_checkpointing", False)),
        optimizer_state_bytes=optimizer_state_bytes(trainer),
        optimizer=type(getattr(trainer.optimizer, "optimizer", trainer.optimizer)).__name__,
        **peak_memory(),
    )
    if cuda:
        result["peak_reserved_bytes"] = int(torch.cuda.max_memory_reserved())
    save()
    return 0


# ----------------------------------------------------------------------------- parent


def compare(measured: dict) -> dict:
    """Measured peak vs ``slam plan --memory``'s total, and part by part where measurable."""
    est = measured.get("estimate", {}).get("memory")
    peak = measured.get("peak_memory_bytes")
    if not est or not peak:
        return {}
    out = {
        "measured_bytes": peak,
        "measured_kind": measured.get("peak_memory_kind"),
        "estimated_bytes": est["total_bytes"],
        "difference_bytes": peak - est["total_bytes"],
        "difference_gib": round((peak - est["total_bytes"]) / GIB, 3),
        "ratio": round(peak / est["total_bytes"], 4),
        "estimate_fits": est["fits"],
        "parts": {},
    }
    if "weights_bytes_measured" in measured:
        out["parts"]["weights"] = {
            "measured": measured["weights_bytes_measured"],
            "estimated": est["weights_bytes"],
        }
    if "optimizer_state_bytes" in measured:
        out["parts"]["optimizer_states"] = {
            "measured": measured["optimizer_state_bytes"],
            "estimated": est["optimizer_states_bytes"],
        }
        # What is left of the peak: gradients + activations + temporaries.
        rest = peak - measured.get("weights_bytes_measured", 0) - measured["optimizer_state_bytes"]
        out["parts"]["gradients_activations_other"] = {
            "measured": rest,
            "estimated": est["gradients_bytes"] + est["activations_bytes"],
        }
    if measured.get("peak_memory_kind") == "cpu_max_rss":
        out["note"] = "CPU: max RSS includes the Python/torch runtime; the comparison is meaningful on GPU"
    return out


def run_method(args, method: str, argv: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="gpu_train_child_") as tmp:
        path = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            *argv,
            "--child",
            method,
            "--child-output",
            str(path),
        ]
        env = {
            **os.environ,
            "PYTORCH_CUDA_ALLOC_CONF": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True"),
        }
        t0 = time.perf_counter()
        try:
            # The child's own output (Trainer logs) goes to stderr: stdout holds only our JSON.
            proc = subprocess.run(
                cmd, stdout=sys.stderr, stderr=sys.stderr, timeout=args.method_timeout, env=env
            )
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        result = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"method": method}
    result["child_seconds"] = round(time.perf_counter() - t0, 2)
    if rc == "timeout":
        result.update(status="timeout", error=f"no result within --method-timeout {args.method_timeout:g} s")
    elif result.get("status") in (None, "started"):
        # Killed without a Python exception (e.g. the kernel's OOM killer: rc -9).
        result.update(status="crashed", error=f"child process exited with {rc} before finishing")
    result["memory_vs_estimate"] = compare(result)
    return result


def summarise(methods: dict) -> dict:
    slam, full = methods.get("slam", {}), methods.get("full", {})
    out = {m: r.get("status") for m, r in methods.items()}
    if slam.get("status") == "ok" and full.get("status") == "ok":
        out["full_over_slam_peak_memory"] = round(full["peak_memory_bytes"] / slam["peak_memory_bytes"], 3)
        out["slam_speedup_tokens_per_second"] = round(
            slam["tokens_per_second"] / full["tokens_per_second"], 3
        )
    if slam.get("trainable_params") and full.get("trainable_params"):
        out["slam_trainable_fraction_of_full"] = round(slam["trainable_params"] / full["trainable_params"], 4)
    return out


def _gib(n) -> str:
    return f"{n / GIB:.2f}" if isinstance(n, int | float) else "-"


def markdown_table(reports: list[dict]) -> str:
    """One row per (report, method): the figures docs/gpu.md shows."""
    cols = [
        "device", "config", "dtype", "method", "status", "trainable params", "step time (s)", "tokens/s",
        "peak GiB (measured)", "estimate GiB", "measured - estimate (GiB)", "measured / estimate",
    ]  # fmt: skip
    rows = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for rep in reports:
        device = (rep.get("device") or {}).get("name", "?")
        for method, r in rep["methods"].items():
            ok = r.get("status") == "ok"
            c = r.get("memory_vs_estimate") or {}
            status = r.get("status", "?") + (f" ({r['stage']})" if r.get("stage") and not ok else "")
            cells = [
                device,
                rep["config"],
                rep["settings"]["dtype"],
                method,
                status,
                f"{r['trainable_params']:,}" if "trainable_params" in r else "-",
                f"{r['step_time_s']:.3f}" if ok else "-",
                f"{r['tokens_per_second']:,.0f}" if ok else "-",
                _gib(r.get("peak_memory_bytes")),
                _gib((r.get("estimate") or {}).get("memory", {}).get("total_bytes")),
                str(c.get("difference_gib", "-")),
                str(c.get("ratio", "-")),
            ]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    if args.table:
        print(markdown_table([json.loads(Path(f).read_text(encoding="utf-8")) for f in args.table]))
        return 0
    child_argv = [a for a in argv if not a.startswith("--output")]
    if "--output" in argv:  # the "--output FILE" spelling: drop its value too
        i = argv.index("--output")
        child_argv = argv[:i] + argv[i + 2 :]
    methods = {}
    for method in args.method_list:
        print(f"[gpu_train] {args.config}: {method} ...", file=sys.stderr, flush=True)
        methods[method] = run_method(args, method, child_argv)
        r = methods[method]
        print(f"[gpu_train] {method}: {r.get('status')} {r.get('error', '')}", file=sys.stderr, flush=True)
    first = next(iter(methods.values()))
    report = {
        "benchmark": "gpu_train",
        "config": args.config,
        "model": CONFIGS[args.config],
        "device": first.get("device"),
        "versions": first.get("versions"),
        "settings": {
            "methods": args.method_list,
            "layers": args.layers,
            "micro_batch_size": args.micro_batch_size,
            "seq_len": args.seq_len,
            "tokens_per_step": args.micro_batch_size * args.seq_len,
            "steps": args.steps,
            "warmup_steps": args.warmup_steps,
            "dtype": args.dtype,
            "bf16_autocast": first.get("bf16_autocast"),
            "gradient_checkpointing": args.gradient_checkpointing,
            "optimizer": "Trainer default AdamW over the trainable parameters (slam_align.train.trainer)",
            "learning_rate": args.learning_rate,
            "seed": args.seed,
            "data": "synthetic Alpaca JSONL of random words, every example cut at exactly seq_len tokens",
            "prompt": args.prompt,
            "model_init": "random (no download), built on the device in --dtype",
            "pytorch_cuda_alloc_conf": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True"),
        },
        "methods": methods,
        "summary": summarise(methods),
    }
    text = json.dumps(report, indent=2)
    if args.output:
        from slam_align.io import atomic_write_text

        atomic_write_text(args.output, text + "\n")
    print(text)
    ok = methods.get("slam", {}).get("status", "ok") == "ok" and all(
        r.get("status") in ("ok", "oom") for r in methods.values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
