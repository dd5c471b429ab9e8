"""The demo's base model: a tiny Llama pretrained from scratch on the synthetic world.

It plays the role of MetaMath on top of an English-centred pretrained model: trained on
English problems with chain-of-thought answers (in the demo's prompt template) plus, per
language and in proportion to its exposure, code-switched problems, monolingual text and
parallel sentences (``World.pretraining_documents``), so it reasons in English, reads the
high-resource stand-ins and hardly the low-resource ones. A plain PyTorch loop over packed
token blocks is the fastest way to do this on a CPU; the result is an ordinary
Transformers model directory (model + tokenizer) that every other command loads.

Base models are cached under the user's cache directory, keyed by the world's
settings, the pretraining settings and a hash of this code, so a second ``slam demo``
starts at the alignment step.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from slam_align.data.prompts import get_prompt
from slam_align.synth.world import World

DEMO_PROMPT = "llamafactory-default"  # short ("Human: ...\nAssistant: "): the official SLAM code's template


@dataclass(frozen=True)
class PretrainSettings:
    hidden: int = 96
    layers: int = 6
    intermediate: int = 256
    heads: int = 4
    kv_heads: int = 2
    vocab_size: int = 1024
    steps: int = 1500
    batch_size: int = 16
    block_size: int = 128
    learning_rate: float = 3e-3
    warmup_steps: int = 60
    weight_decay: float = 0.01
    question_loss: bool = True  # loss on English questions as well as answers
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def code_version() -> str:
    """Hash of the code that makes a base model: a change here invalidates the cache."""
    from slam_align import __version__

    h = hashlib.sha256(__version__.encode())
    for name in ("world.py", "pretrain.py"):
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:12]


def cache_key(world_settings, settings: PretrainSettings) -> str:
    blob = json.dumps({"world": world_settings.to_dict(), "pretrain": settings.to_dict()}, sort_keys=True)
    return hashlib.sha256((blob + code_version()).encode()).hexdigest()[:16]


def default_cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """``explicit`` > ``$SLAM_CACHE_DIR`` > ``$XDG_CACHE_HOME/slam-align`` > ``~/.cache/slam-align``."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("SLAM_CACHE_DIR"):
        return Path(os.environ["SLAM_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "slam-align"


def pretraining_documents(world: World, eos: str) -> list[tuple[str, str]]:
    """(prompt, text) pairs, tokenised separately exactly as training and evaluation do.

    English problems are (prompt, chain-of-thought answer); foreign text is ("", text):
    plain language modelling, no answers. Whether the prompt gets loss is a setting.
    """
    prompt = get_prompt(DEMO_PROMPT)
    english, foreign = world.pretraining_documents()
    docs = [(prompt.render(q), a + eos) for q, a in english]
    docs += [("", t + eos) for t in foreign]
    return docs


def train_tokenizer(world: World, settings: PretrainSettings, output_dir: Path | None = None):
    from slam_align.models.tiny import train_bpe_tokenizer

    corpus = world.tokenizer_corpus() + [c + t for c, t in pretraining_documents(world, "")]
    return train_bpe_tokenizer(corpus, vocab_size=settings.vocab_size, output_dir=output_dir)


def _packed_blocks(docs, block: int, rng: random.Random, prompt_loss: bool):
    """Shuffle documents, concatenate, cut into blocks of (input ids, labels)."""
    order = list(range(len(docs)))
    rng.shuffle(order)
    ids: list[int] = []
    labels: list[int] = []
    for i in order:
        context, target = docs[i]
        ids += context + target
        labels += (context if prompt_loss else [-100] * len(context)) + target
    return [(ids[i : i + block], labels[i : i + block]) for i in range(0, len(ids) - block + 1, block)]


def pretrain(
    world: World,
    settings: PretrainSettings,
    output_dir: str | os.PathLike,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict:
    """Train tokenizer and model; save both to ``output_dir``. Returns timing and the loss curve."""
    import torch

    from slam_align.models.tiny import build_tiny_model

    output_dir = Path(output_dir)
    start = time.perf_counter()
    torch.manual_seed(settings.seed)
    tokenizer = train_tokenizer(world, settings)
    docs = pretraining_documents(world, tokenizer.eos_token)
    contexts = tokenizer([c for c, _ in docs], add_special_tokens=False)["input_ids"]
    targets = tokenizer([t for _, t in docs], add_special_tokens=False)["input_ids"]
    token_docs = list(zip(contexts, targets))
    model = build_tiny_model(
        "llama",
        tokenizer,
        seed=settings.seed,
        num_layers=settings.layers,
        hidden=settings.hidden,
        intermediate_size=settings.intermediate,
        num_attention_heads=settings.heads,
        num_key_value_heads=settings.kv_heads,
    )
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.learning_rate,
        betas=(0.9, 0.98),
    )

    def lr_at(step: int) -> float:  # linear warm-up, cosine decay to 10%
        if step < settings.warmup_steps:
            return (step + 1) / settings.warmup_steps
        t = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    rng = random.Random(settings.seed)
    blocks: list = []
    losses: list[float] = []
    tokens_seen = 0
    for step in range(settings.steps):
        if len(blocks) < settings.batch_size:
            blocks = _packed_blocks(
                token_docs, settings.block_size, rng, settings.question_loss
            )  # a new epoch
        chosen = [blocks.pop() for _ in range(settings.batch_size)]
        batch = torch.tensor([ids for ids, _ in chosen])
        loss = model(input_ids=batch, labels=torch.tensor([lab for _, lab in chosen])).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        tokens_seen += batch.numel()
        losses.append(round(loss.item(), 4))
        if progress is not None:
            progress(step + 1, settings.steps, losses[-1])
    model.eval()
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    seconds = time.perf_counter() - start
    info = {
        "seconds": round(seconds, 2),
        "steps": settings.steps,
        "tokens_seen": tokens_seen,
        "documents": len(docs),
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_loss": sum(losses[-20:]) / len(losses[-20:]),
        "loss_curve": losses[:: max(1, len(losses) // 100)],
    }
    (output_dir / "pretrain.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def get_base_model(
    world: World,
    settings: PretrainSettings,
    cache_dir: str | os.PathLike | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[Path, dict, bool]:
    """(model directory, pretraining info, whether it came from the cache)."""
    root = default_cache_dir(cache_dir)
    target = root / f"base-{cache_key(world.settings, settings)}"
    info_file = target / "pretrain.json"
    if info_file.is_file():
        return target, json.loads(info_file.read_text(encoding="utf-8")), True
    root.mkdir(parents=True, exist_ok=True)
    # Train into a temporary sibling and rename: an interrupted run never leaves a half model.
    tmp = Path(tempfile.mkdtemp(prefix=".base-", dir=root))
    try:
        info = pretrain(world, settings, tmp, progress)
        (tmp / "settings.json").write_text(
            json.dumps({"world": world.settings.to_dict(), "pretrain": settings.to_dict()}, indent=2) + "\n",
            encoding="utf-8",
        )
        if target.exists():  # another process finished first: keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target, info, False
