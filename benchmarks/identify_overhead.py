"""How much does ``slam identify`` cost over a bare forward pass of the same batches?

Builds a small random model of a real architecture (no download), tokenises real MGSM
questions (``../shared/data``; a fixed English/German text stands in when absent),
batches them exactly as ``slam identify`` does and times, interleaved, ``--repeats``
times each:

- ``bare_forward``: ``model(input_ids, attention_mask, use_cache=False)``, the whole
  causal LM with its LM head, no hooks (what a user would otherwise run);
- ``bare_backbone``: the decoder stack only (what identification runs), no hooks;
- ``identify``: the decoder stack with the counting hooks, plus computing every
  statistic (SLAM's and LAPE) from the counts.

``ratio`` = identify / bare_forward (goal <= 1.3); ``hook_ratio`` = identify / bare_backbone
isolates the hooks' own cost. Medians over repeats. Usage::

    python benchmarks/identify_overhead.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _questions(data_dir: Path, langs: list[str], limit: int) -> dict[str, list[str]]:
    if (data_dir / "mgsm").is_dir():
        from slam_align.data.benchmarks import load_benchmark

        out: dict[str, list[str]] = {lang: [] for lang in langs}
        for p in load_benchmark("mgsm", langs, data_dir, limit=limit):
            out[p.lang].append(p.question)
        return out
    base = "Janet has {n} ducks. She sells {m} eggs a day at the market. How many dollars does she make?"
    return {
        lang: [f"[{lang}] " + base.format(n=i + 3, m=2 * i + 1) * (1 + i % 3) for i in range(limit)]
        for lang in langs
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-type", default="llama")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--num-layers", type=int, default=4)
    ap.add_argument("--langs", default="en,de,zh,bn")
    ap.add_argument("--limit", type=int, default=32, help="questions per language")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    import torch

    from slam_align.identify.collect import backbone, collect_counts, encode_questions, make_batches
    from slam_align.identify.lape import lape_select
    from slam_align.identify.stats import layer_statistics
    from slam_align.models.architectures import find_layers
    from slam_align.models.tiny import build_tiny_model, train_bpe_tokenizer

    torch.set_num_threads(args.threads)
    langs = args.langs.split(",")
    questions = _questions(Path(args.data_dir), langs, args.limit)
    tok = train_bpe_tokenizer([q for qs in questions.values() for q in qs] * 2, vocab_size=2000)
    model = build_tiny_model(
        args.model_type, tok, seed=0, hidden=args.hidden, num_layers=args.num_layers
    ).eval()
    mods = [info.ffn_act_modules for info in find_layers(model)]
    encoded = [encode_questions(tok, questions[lang], lang) for lang in langs]
    batches = make_batches(encoded, args.batch_size, tok.pad_token_id)
    net = backbone(model)

    def bare(module) -> None:
        with torch.inference_mode():
            for b in batches:
                module(input_ids=b.input_ids, attention_mask=b.attention_mask, use_cache=False)

    def run_identify() -> None:
        probs = collect_counts(model, mods, batches, langs).probabilities()
        layer_statistics(probs, langs)
        lape_select(probs)

    runs = {"bare_forward": lambda: bare(model), "bare_backbone": lambda: bare(net), "identify": run_identify}
    for fn in runs.values():  # warm-up (allocator, kernels)
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.repeats):
        for name, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "model_type": args.model_type,
        "hidden": args.hidden,
        "num_layers": args.num_layers,
        "ffn_neurons": [f.shape[1] for f in collect_counts(model, mods, batches[:1], langs).fires],
        "langs": langs,
        "questions_per_lang": args.limit,
        "batches": len(batches),
        "tokens": int(sum(b.num_tokens for b in batches)),
        "threads": args.threads,
        "repeats": args.repeats,
        "seconds": {k: round(v, 4) for k, v in med.items()},
        "ratio": round(med["identify"] / med["bare_forward"], 3),
        "hook_ratio": round(med["identify"] / med["bare_backbone"], 3),
        "goal": "ratio <= 1.3",
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>20}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
