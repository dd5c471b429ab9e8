"""``slam merge``: base model + SLAM delta checkpoint -> a full Transformers model directory."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import Options, option, options_to_dict
from slam_align.io import atomic_write_json, open_run_dir, write_run_readme
from slam_align.train.delta import DELTA_FILE, TRAIN_RECORD, base_reference, merged_model, save_model_dir

# What a merged model directory holds (model, tokenizer, records): all --overwrite may remove.
OUTPUTS = ("*.safetensors", "*.json", "*.jinja", "*.model", "*.txt", "tokenizer*", ".merge.*")


@dataclass
class MergeOptions(Options):
    base: str = option(help="base model: hub id or local directory (the one the delta was trained from)")
    delta: str = option(help="slam_delta.safetensors (or the final directory holding it)")
    output: str = option(help="directory for the merged full model", aliases=["-o"])
    overwrite: bool = option(False, help="replace an earlier slam merge output in --output")
    check_config: bool = option(True, help="refuse a base whose config hash differs from the manifest's")


def merge(options: MergeOptions) -> dict:
    """Base + delta -> a full Transformers model directory (base dtype, tokenizer copied).

    The training run's record (``slam_train.json`` beside the delta) is copied too, so that
    ``slam eval`` of the merged model knows which run produced it."""
    start = time.perf_counter()
    delta_path = Path(options.delta).expanduser()
    if delta_path.is_dir():
        delta_path = delta_path / DELTA_FILE
    model, manifest = merged_model(options.base, delta_path, options.check_config)
    with open_run_dir(
        options.output, "merge", config=options_to_dict(options), overwrite=options.overwrite, outputs=OUTPUTS
    ) as run:
        save_model_dir(model, options.base, run.path)
        if (delta_path.parent / TRAIN_RECORD).is_file():
            shutil.copy2(delta_path.parent / TRAIN_RECORD, run.path / TRAIN_RECORD)
        record = {"base": base_reference(options.base), "delta": str(delta_path.resolve()), **manifest}
        atomic_write_json(run.path / "slam_merge.json", record)
        atomic_write_json(run.path / "metrics.json", {k: manifest.get(k) for k in ("tensors", "parameters")})
        atomic_write_json(run.path / "timing.json", {"merge_seconds": time.perf_counter() - start})
        write_run_readme(
            run.path / "README.md",
            f"slam merge: {options.base} + {delta_path}",
            {
                "Model": f"A full Transformers model: the base with {manifest.get('tensors')} tensors "
                f"({manifest.get('parameters'):,} parameters) of the delta put in, in the base's dtype.",
                "Files": "`slam_merge.json` base, delta and its manifest; `slam_train.json` the training "
                "run's record (when the delta came with it); `config.yaml` the options used.",
            },
        )
        run.finish()
    return {"output": str(run.path), "tensors": manifest.get("tensors"), "manifest": manifest}


def merge_cli(options: MergeOptions) -> int:
    result = merge(options)
    print(f"merged {result['tensors']} tensors into {result['output']}")
    return 0
