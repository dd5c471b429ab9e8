"""Which engine for SLAM on 7B / 13B / 70B Llama-2 models, 1 / 2 / 8 GPUs of 24 / 80 GB.

From ``slam plan --memory``'s estimate (``slam_align.models.accounting.estimate_memory``;
the models are built on the meta device from their configs: nothing is downloaded):
SLAM on layers 0-5 (FFN up + down), bf16 mixed precision (16-bit weights, fp32 AdamW state
and master copy), micro-batch 1 x 1024 tokens, gradient checkpointing. The engine picked is
the simplest one whose estimate stays within 90% of the card (the estimate leaves out the
CUDA context, allocator fragmentation and communication buffers): plain DDP (every GPU
holds the whole model), then ZeRO-2 (gradients and optimizer state sharded), then ZeRO-3 or
FSDP2 full shard (the weights too, the frozen ones included). On one GPU nothing shards.

    python benchmarks/engine_choice.py            # the markdown table in docs/training.md
    python benchmarks/engine_choice.py --json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LLAMA2 = {
    "7B": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32),
    "13B": dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40),
    "70B": dict(
        hidden_size=8192,
        intermediate_size=28672,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
    ),
}
ENGINES = (("DDP", 0), ("ZeRO-2", 2), ("ZeRO-3 / FSDP2", 3))
GPUS, CARDS, HEADROOM = (1, 2, 8), (24, 80), 0.9


def estimates(folder: Path) -> list[dict]:
    from slam_align.models.plan import PlanOptions, plan

    rows = []
    for name, dims in LLAMA2.items():
        config = folder / f"llama2-{name}.json"
        config.write_text(
            json.dumps({"model_type": "llama", "vocab_size": 32000, "torch_dtype": "bfloat16", **dims})
        )
        for gpus in GPUS:
            for engine, zero in ENGINES if gpus > 1 else ENGINES[:1]:
                mem = plan(
                    PlanOptions(
                        model=str(config), method="slam", layers="0-5", memory=True, gpus=gpus, zero=zero
                    )
                )["memory"]
                rows.append({"model": name, "gpus": gpus, "engine": engine if gpus > 1 else "one GPU", **mem})
    return rows


def choose(rows: list[dict]) -> list[dict]:
    table = []
    for name in LLAMA2:
        for gpus in GPUS:
            row = {"model": name, "gpus": gpus}
            options = [r for r in rows if r["model"] == name and r["gpus"] == gpus]
            for card in CARDS:
                fit = next((r for r in options if r["total_gib"] <= HEADROOM * card), None)
                row[f"{card}GB"] = (
                    f"{fit['engine']} ({fit['total_gib']:.1f} GiB)"
                    if fit
                    else f"does not fit ({min(r['total_gib'] for r in options):.1f} GiB at best)"
                )
            table.append(row)
    return table


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="every estimate as one JSON object")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        rows = estimates(Path(tmp))
    table = choose(rows)
    if a.json:
        print(json.dumps({"choice": table, "estimates": rows}))
        return table
    print("| model | GPUs | 24 GB each | 80 GB each |\n|---|---|---|---|")
    for r in table:
        print(f"| Llama-2-{r['model']} | {r['gpus']} | {r['24GB']} | {r['80GB']} |")
    return table


if __name__ == "__main__":
    main()
