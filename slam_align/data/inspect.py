"""``slam data inspect``: a few training examples rendered exactly as training renders them."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import Options, option
from slam_align.data.training import read_alpaca
from slam_align.errors import SlamError
from slam_align.io import dumps_json


@dataclass
class InspectOptions(Options):
    file: str = option(
        help="a train.jsonl (or a 'slam data build' directory, or any Alpaca JSON/JSONL)", positional=True
    )
    prompt: str = option("alpaca", help="prompt template name (slam_align.data.prompts)")
    n: int = option(3, help="how many examples to show", aliases=["-n"], at_least=1)
    lang: str | None = option(None, help="only examples in this language")
    kind: str | None = option(None, help="only examples of this kind (alignment / response)")
    random: bool = option(False, help="pick examples at random (seeded) instead of the first ones")
    seed: int = option(0, help="seed for --random")
    tokenizer: str | None = option(
        None,
        help="tokenizer (hub id or local directory): renders the 'chat' template and counts each "
        "example's prompt and response tokens",
    )
    json: bool = option(False, help="print one JSON object instead of text")


def inspect(opts: InspectOptions) -> dict:
    """A few examples of FILE rendered with the prompt template; returns ``{template, examples, ...}``."""
    from slam_align.data.prompts import get_prompt
    from slam_align.data.tokenize import render_pair

    template = get_prompt(opts.prompt)
    path = Path(opts.file)
    examples = read_alpaca(path / "train.jsonl" if path.is_dir() else path)
    total = len(examples)
    if opts.lang:
        examples = [e for e in examples if e.lang == opts.lang]
    if opts.kind:
        examples = [e for e in examples if e.kind == opts.kind]
    if not examples:
        raise SlamError(f"{path}: no examples match lang={opts.lang} kind={opts.kind}")
    chosen = (
        random.Random(opts.seed).sample(examples, min(opts.n, len(examples)))
        if opts.random
        else examples[: opts.n]
    )
    tokenizer = None
    if opts.tokenizer:  # renders chat templates and counts tokens (what --cutoff-len is measured in)
        from slam_align.models.loading import load_tokenizer

        tokenizer = load_tokenizer(opts.tokenizer)
    shown = []
    for ex in chosen:
        prompt, target = render_pair(ex, template, tokenizer if template.uses_chat_template else None)
        row = {"lang": ex.lang, "source": ex.source, "kind": ex.kind, "prompt": prompt, "target": target}
        if tokenizer is not None:
            row["tokens"] = {
                "prompt": len(tokenizer(prompt, add_special_tokens=template.add_special_tokens)["input_ids"]),
                "target": len(tokenizer(target, add_special_tokens=False)["input_ids"]),
            }
        shown.append(row)
    return {
        "file": str(path),
        "template": template.id,
        "rows": total,
        "languages": dict(sorted(Counter(e.lang for e in examples).items())),
        "examples": shown,
    }


def inspect_cli(opts: InspectOptions) -> int:
    result = inspect(opts)
    if opts.json:
        print(dumps_json(result))
        return 0
    print(f"{result['file']}: {result['rows']} rows; template {result['template']}")
    for i, ex in enumerate(result["examples"], 1):
        print(
            f"\n===== example {i}  lang={ex['lang']}  kind={ex['kind'] or '-'}  source={ex['source']}"
            + (f"  tokens={ex['tokens']['prompt']}+{ex['tokens']['target']}" if "tokens" in ex else "")
            + " ====="
        )
        print(ex["prompt"] + ex["target"])
    return 0
