"""Problems per second: ``slam eval``'s transformers backend vs the baselines' naive loop.

The naive loop is what the baselines' evaluation scripts do: one ``model.generate`` call
per problem (batch of one, so no padding and no batching), greedy, until EOS or
``max_new_tokens``, no stop sequences. ``slam eval`` runs the same problems through
``evaluate(EvalOptions(...))`` (length-sorted batches, left padding, KV cache, stop
sequences, writing predictions and metrics as it goes). Same tiny random Llama (built here
from its config class, tokenizer trained on MGSM text), same prompts, same
``max_new_tokens``, one pass over the problems each; the model is loaded before either
clock starts. The two are interleaved chunk by chunk (naive on a chunk, then ``slam eval``
resuming its run directory with that chunk) so that load from other processes on this
shared machine hits both alike; ``slam eval``'s time is its ``timing.json`` generation time.

A random model never writes EOS or a stop sequence, so every problem runs the full
``max_new_tokens`` in both: the speed-up measured here comes from batching alone. On a
real model the stop sequences add to it (baseline scripts generate on past the answer
into invented next questions until the token budget runs out).

    python benchmarks/eval_throughput.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("SLAM_SHARED_DATA", REPO.parent / "shared" / "data"))


def problems(langs: list[str], per_lang: int) -> list[dict]:
    if (DATA / "mgsm").is_dir():
        from slam_align.data.benchmarks import load_benchmark

        return [
            {"lang": p.lang, "index": p.index, "question": p.question, "answer": p.answer}
            for p in load_benchmark("mgsm", langs, DATA, limit=per_lang)
        ]
    text = "Janet has {n} ducks that lay {m} eggs a day. She eats 3. How many eggs are left each week?"
    return [
        {"lang": lang, "index": i, "question": f"[{lang}] " + text.format(n=i + 2, m=3 * i + 5), "answer": 1}
        for lang in langs
        for i in range(per_lang)
    ]


def build_model(out: Path, hidden: int, layers: int, questions: list[str]) -> Path:
    from slam_align.models.tiny import build_tiny_model, train_bpe_tokenizer

    corpus = (
        questions + ["Below is an instruction that describes a task. ### Instruction: ### Response:"] * 10
    )
    tok = train_bpe_tokenizer(corpus, vocab_size=1024, output_dir=out)
    build_tiny_model("llama", tok, seed=0, output_dir=out, hidden=hidden, num_layers=layers)
    return out


def load_naive(model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    return tok, AutoModelForCausalLM.from_pretrained(str(model_dir)).eval()


def naive_loop(tok, model, prompts: list[str], max_new_tokens: int) -> tuple[float, list[str]]:
    """The baselines' loop: one generate() per problem, batch of one, no stop sequences."""
    import torch

    texts = []
    start = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            ids = tok(prompt, return_tensors="pt").input_ids
            out = model.generate(
                ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
            )
            texts.append(tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    return time.perf_counter() - start, texts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--langs", default="en,de,zh,bn", help="MGSM languages")
    ap.add_argument("--per-lang", type=int, default=32, help="problems per language")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument(
        "--chunk-batches",
        type=int,
        default=2,
        help="batches per interleaved round (slam eval sorts within a round)",
    )
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    import torch

    torch.set_num_threads(args.threads)
    from slam_align.data.prompts import get_prompt
    from slam_align.evaluate.eval import EvalOptions, evaluate
    from slam_align.evaluate.extract import cut_at_stop

    rows = problems(args.langs.split(","), args.per_lang)
    template = get_prompt("alpaca")
    prompts = [template.render(r["question"], lang=r["lang"]) for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = build_model(tmp / "model", args.hidden, args.layers, [r["question"] for r in rows])
        bench = tmp / "problems.jsonl"

        # Interleaved, one chunk of problems at a time (naive, then slam eval resuming its run
        # with the new chunk), so that load from other processes on the machine hits both alike.
        tok, model = load_naive(model_dir)
        naive_seconds, ours, tokens, eval_wall = 0.0, 0.0, 0, 0.0
        naive_texts: list[str] = []
        chunk = args.batch_size * args.chunk_batches
        for start in range(0, len(rows), chunk):
            sec, texts = naive_loop(tok, model, prompts[start : start + chunk], args.max_new_tokens)
            naive_seconds += sec
            naive_texts += texts
            bench.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[: start + chunk]),
                encoding="utf-8",
            )
            options = EvalOptions(
                model=str(model_dir),
                output=str(tmp / "run"),
                benchmark=[f"jsonl:{bench}"],
                max_new_tokens=args.max_new_tokens,
                batch_size=args.batch_size,
                progress=False,
            )
            t0 = time.perf_counter()
            evaluate(options)
            eval_wall += time.perf_counter() - t0
            timing = json.loads((tmp / "run" / "timing.json").read_text())
            ours += timing["generate_seconds"]
            tokens += timing["tokens_generated"]
        preds = {
            (r["lang"], r["index"]): r["prediction"]
            for r in map(json.loads, (tmp / "run" / "predictions.jsonl").read_text().splitlines())
        }
        agree = sum(
            preds[(r["lang"], r["index"])] == cut_at_stop(t, template.stop) for r, t in zip(rows, naive_texts)
        ) / len(rows)

    n = len(rows)
    result = {
        "problems": n,
        "langs": args.langs,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "model": f"llama hidden {args.hidden}, {args.layers} layers, random init",
        "threads": args.threads,
        "device": "cpu",
        "naive": {"seconds": naive_seconds, "problems_per_second": n / naive_seconds},
        "slam_eval": {
            "seconds": ours,
            "problems_per_second": n / ours,
            "tokens_per_second": tokens / ours,
            "wall_seconds_including_load_and_scoring": eval_wall,
        },
        "speedup": naive_seconds / ours,
        "same_output_fraction": agree,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{n} problems, {args.max_new_tokens} new tokens: naive {n / naive_seconds:.2f} problems/s, "
            f"slam eval {n / ours:.2f} problems/s -> {result['speedup']:.1f}x "
            f"(same output on {100 * agree:.0f}% of problems)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
