"""A cache of tokenised training data (``slam train --tokenized-cache DIR``).

An entry is keyed on what decides the features: the examples themselves (after reading,
mixing and ``--limit``: content, not file names), the tokenizer (its serialised vocabulary,
merges, normaliser and special tokens), the prompt template's id and the cutoff. Packing,
batch size and the validation split are applied after it, so they share one entry. Entries
are ``datasets`` Arrow directories written under a temporary name and renamed when complete:
a killed run never leaves a half entry that a later run would read.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

from slam_align.data.tokenize import tokenize_examples
from slam_align.errors import SlamError
from slam_align.io import read_json_object

FORMAT = "slam-tokenized/1"


def tokenizer_fingerprint(tokenizer) -> str:
    """SHA-256 of what makes the tokenizer map text to ids (not where it was loaded from)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    extra = json.dumps(
        [
            type(tokenizer).__name__,
            tokenizer.special_tokens_map,
            tokenizer.bos_token_id,
            tokenizer.eos_token_id,
        ],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256((body + extra).encode("utf-8")).hexdigest()


def cache_key(examples: Sequence, tokenizer, template, cutoff_len: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([FORMAT, template.id, cutoff_len, tokenizer_fingerprint(tokenizer)]).encode())
    for e in examples:
        h.update(json.dumps(e.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()[:32]


def tokenize_cached(
    examples: Sequence, tokenizer, template, cutoff_len: int, cache_dir: str | Path | None
) -> tuple[list[dict], int, dict]:
    """:func:`tokenize_examples` through the cache; the third value says what happened
    (``{"status": "off" | "hit" | "miss", "path": ...}``, written to ``timing.json``)."""
    if not cache_dir:
        features, dropped = tokenize_examples(examples, tokenizer, template, cutoff_len)
        return features, dropped, {"status": "off"}
    import datasets

    root = Path(cache_dir).expanduser()
    if root.exists() and not root.is_dir():
        raise SlamError(f"{root}: --tokenized-cache must be a directory, not a file")
    entry = root / cache_key(examples, tokenizer, template, cutoff_len)
    meta_file = entry / "slam_tokenized.json"
    if meta_file.is_file():
        meta = read_json_object(meta_file, what="tokenised-data cache record")
        ds = datasets.load_from_disk(str(entry / "features"))
        features = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in ds]
        return features, int(meta["dropped"]), {"status": "hit", "path": str(entry)}
    features, dropped = tokenize_examples(examples, tokenizer, template, cutoff_len)
    tmp = root / f".{entry.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    columns = {"input_ids": [f["input_ids"] for f in features], "labels": [f["labels"] for f in features]}
    datasets.Dataset.from_dict(columns).save_to_disk(str(tmp / "features"))
    meta = {"format": FORMAT, "template": template.id, "cutoff_len": cutoff_len, "examples": len(examples)}
    (tmp / "slam_tokenized.json").write_text(json.dumps({**meta, "dropped": dropped}), encoding="utf-8")
    try:
        tmp.rename(entry)
    except OSError:  # another run wrote the same entry meanwhile: theirs is as good
        shutil.rmtree(tmp, ignore_errors=True)
    return features, dropped, {"status": "miss", "path": str(entry)}
