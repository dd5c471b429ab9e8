"""Delta checkpoints: only the trained tensors, plus a manifest naming the base model.

A SLAM run on Llama-2-7B changes 0.54 B of 6.7 B parameters; ``slam_delta.safetensors``
holds exactly those tensors (about 1 GB in bf16 instead of 13 GB), and the manifest
(stored in the safetensors metadata and beside it as ``slam_delta.json``) names the base
model and the SHA-256 of its configuration. ``slam merge`` loads the base, checks the
hash, puts the delta's tensors in, and saves a full model, bit-identical to the run's
``final`` model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import option
from slam_align.errors import SlamError
from slam_align.io import atomic_path, atomic_write_json, prepare_output_dir

DELTA_FILE = "slam_delta.safetensors"
MANIFEST_FILE = "slam_delta.json"
# Keys that change with the library version or the save location, not with the model.
_VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "name_or_path", "_commit_hash")


def config_sha256(config) -> str:
    """SHA-256 of a model config (the architecture's identity), stable across save/load."""
    d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    for k in _VOLATILE_CONFIG_KEYS:
        d.pop(k, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()


def base_reference(model: str) -> str:
    """A local base is recorded by absolute path, a hub id as given."""
    p = Path(model)
    return str(p.resolve()) if p.exists() else model


def _final_tensors(final_dir: Path, names: list[str]) -> dict:
    """The named tensors as saved in ``final_dir`` (so the delta equals the final model exactly)."""
    from safetensors import safe_open

    wanted, found = set(names), {}
    for f in sorted(final_dir.glob("*.safetensors")):
        if f.name == DELTA_FILE:
            continue
        with safe_open(str(f), framework="pt") as st:
            for key in st.keys():
                if key in wanted:
                    found[key] = st.get_tensor(key)
    return found


def save_delta(
    final_dir: str | Path, names: list[str], base_model: str, base_config, extra: dict | None = None
) -> Path:
    """Write ``final_dir/slam_delta.safetensors`` with the tensors ``names`` and the manifest."""
    from safetensors.torch import save_file

    final_dir = Path(final_dir)
    tensors = _final_tensors(final_dir, names)
    missing = sorted(set(names) - set(tensors))
    if missing:
        raise SlamError(
            f"{final_dir}: trained tensor {missing[0]} is not in the saved model (cannot write a delta)"
        )
    manifest = {
        "format": "slam-delta/1",
        "base_model": base_reference(base_model),
        "base_config_sha256": config_sha256(base_config),
        "tensors": len(tensors),
        "parameters": sum(t.numel() for t in tensors.values()),
        **(extra or {}),
    }
    out = final_dir / DELTA_FILE
    with atomic_path(out) as tmp:
        save_file(
            {k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"slam": json.dumps(manifest)}
        )
    atomic_write_json(final_dir / MANIFEST_FILE, manifest)
    return out


def load_delta(path: str | Path) -> tuple[dict, dict]:
    """(tensors, manifest) of a delta file."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise SlamError(f"{path}: delta file not found")
    try:
        with safe_open(str(path), framework="pt") as st:
            meta = st.metadata() or {}
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise SlamError(f"{path}: not a readable safetensors file ({e})") from None
    if "slam" not in meta:
        raise SlamError(f"{path}: no SLAM manifest in the file's metadata (not a slam delta)")
    return tensors, json.loads(meta["slam"])


@dataclass
class MergeOptions:
    base: str = option(help="base model: hub id or local directory (the one the delta was trained from)")
    delta: str = option(help="slam_delta.safetensors (or the final directory holding it)")
    output: str = option(help="directory for the merged full model", aliases=["-o"])
    overwrite: bool = option(False, help="replace an existing output directory")
    check_config: bool = option(True, help="refuse a base whose config hash differs from the manifest's")


def merge(options: MergeOptions) -> dict:
    """Base + delta -> a full Transformers model directory (base dtype, tokenizer copied)."""
    from slam_align.models.loading import load_config, load_model, load_tokenizer

    delta_path = Path(options.delta)
    if delta_path.is_dir():
        delta_path = delta_path / DELTA_FILE
    tensors, manifest = load_delta(delta_path)
    config = load_config(options.base)
    if options.check_config and config_sha256(config) != manifest.get("base_config_sha256"):
        raise SlamError(
            f"{options.base}: config hash differs from the delta's base ({manifest.get('base_model')}); "
            "pass --no-check-config to merge anyway"
        )
    model = load_model(options.base, dtype="auto")
    params = dict(model.named_parameters())
    unknown = sorted(set(tensors) - set(params))
    if unknown:
        raise SlamError(f"{delta_path}: tensor {unknown[0]} does not exist in {options.base}")
    import torch

    with torch.no_grad():
        for name, t in tensors.items():
            p = params[name]
            if p.shape != t.shape:
                raise SlamError(
                    f"{delta_path}: tensor {name} has shape {tuple(t.shape)}, base has {tuple(p.shape)}"
                )
            p.copy_(t.to(p.dtype))
    out = prepare_output_dir(options.output, overwrite=options.overwrite)
    tmp = out / ".merge.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    try:
        load_tokenizer(options.base).save_pretrained(str(tmp))
    except Exception:  # a base without a tokenizer still merges; the model is what matters
        pass
    for f in tmp.iterdir():  # move in place only once everything was written
        f.replace(out / f.name)
    tmp.rmdir()
    atomic_write_json(
        out / "slam_merge.json", {"base": base_reference(options.base), "delta": str(delta_path), **manifest}
    )
    return {"output": str(out), "tensors": len(tensors), "manifest": manifest}


def merge_cli(options: MergeOptions) -> int:
    result = merge(options)
    print(f"merged {result['tensors']} tensors into {result['output']}")
    return 0


def rebuild_from_base(final_dir: str | Path, base: str) -> Path:
    """Replace ``final_dir``'s model by base + its delta (frozen tensors straight from the base).

    Needed where the engine changed the frozen weights' representation, e.g. DeepSpeed with
    bf16 keeps module weights in bf16, so an fp32 base would come back rounded. The delta
    and manifest are kept; the swap happens only once the rebuilt model is complete.
    """
    final_dir = Path(final_dir)
    tmp, old = final_dir.with_name(".final.rebuild"), final_dir.with_name(".final.old")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    merge(MergeOptions(base=base, delta=str(final_dir / DELTA_FILE), output=str(tmp)))
    for name in (DELTA_FILE, MANIFEST_FILE):
        shutil.copy2(final_dir / name, tmp / name)
    final_dir.rename(old)
    tmp.rename(final_dir)
    shutil.rmtree(old)
    return final_dir
