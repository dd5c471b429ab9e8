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
import tempfile
from pathlib import Path

from slam_align.errors import SlamError
from slam_align.io import atomic_path, atomic_write_json

DELTA_FILE = "slam_delta.safetensors"
MANIFEST_FILE = "slam_delta.json"
# Written by slam train beside every trained model (final/): which run made it, what it
# trained and how long it took. slam eval copies it into its metrics; slam merge keeps it.
TRAIN_RECORD = "slam_train.json"
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
    final_dir: str | Path, names: list[str] | dict, base_model: str, base_config, extra: dict | None = None
) -> Path:
    """Write ``final_dir/slam_delta.safetensors`` and the manifest: the tensors ``names`` as
    saved in ``final_dir``, or the tensors given (a dict, e.g. gathered from a sharded engine)."""
    from safetensors.torch import save_file

    final_dir = Path(final_dir)
    if isinstance(names, dict):
        tensors = names
        final_dir.mkdir(parents=True, exist_ok=True)
    else:
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
    try:
        manifest = json.loads(meta["slam"])
    except ValueError:
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != "slam-delta/1":
        raise SlamError(
            f"{path}: the SLAM manifest in the file's metadata is corrupt (expected slam-delta/1)"
        )
    return tensors, manifest


def merged_model(base: str, delta_path: Path, check_config: bool = True):
    """The base model with the delta's tensors put in (in the base's dtype): (model, manifest).

    Everything is checked before the caller writes anything: the manifest, the base's
    config hash, every tensor's name and shape.
    """
    import torch

    from slam_align.models.loading import load_config, load_model

    tensors, manifest = load_delta(delta_path)
    config = load_config(base)
    if check_config and config_sha256(config) != manifest.get("base_config_sha256"):
        raise SlamError(
            f"{base}: config hash differs from the delta's base ({manifest.get('base_model')}); "
            "pass --no-check-config to merge anyway"
        )
    model = load_model(base, dtype="auto")
    params = dict(model.named_parameters())
    unknown = sorted(set(tensors) - set(params))
    if unknown:
        raise SlamError(f"{delta_path}: tensor {unknown[0]} does not exist in {base}")
    for name, t in tensors.items():
        if params[name].shape != t.shape:
            raise SlamError(
                f"{delta_path}: tensor {name} has shape {tuple(t.shape)}, base has {tuple(params[name].shape)}"
            )
    with torch.no_grad():
        for name, t in tensors.items():
            params[name].copy_(t.to(params[name].dtype))
    return model, manifest


def save_model_dir(model, tokenizer_source: str, out: Path) -> None:
    """Save ``model`` (+ the tokenizer of ``tokenizer_source``) into ``out``: written into a
    hidden sibling first and moved in file by file only once everything was written."""
    from slam_align.models.loading import load_tokenizer

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".merge.", dir=out))
    try:
        model.save_pretrained(str(tmp))
        try:
            load_tokenizer(tokenizer_source).save_pretrained(str(tmp))
        except SlamError:  # a base without a tokenizer still merges; the model is what matters
            pass
        for f in tmp.iterdir():
            f.replace(out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def rebuild_from_base(final_dir: str | Path, base: str) -> Path:
    """Replace ``final_dir``'s model by base + its delta (frozen tensors straight from the base).

    Needed where the engine changed the frozen weights' representation, e.g. DeepSpeed with
    bf16 keeps module weights in bf16, so an fp32 base would come back rounded. The delta,
    manifest and run record are kept; the swap happens only once the rebuilt model is complete.
    """
    final_dir = Path(final_dir)
    model, _ = merged_model(base, final_dir / DELTA_FILE)
    tmp, old = final_dir.with_name(".final.rebuild"), final_dir.with_name(".final.old")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    save_model_dir(model, base, tmp)
    for f in final_dir.iterdir():  # what the run wrote beside the weights
        if f.suffix == ".json" and f.name.startswith("slam_"):
            shutil.copy2(f, tmp / f.name)
    shutil.copy2(final_dir / DELTA_FILE, tmp / DELTA_FILE)
    final_dir.rename(old)
    tmp.rename(final_dir)
    shutil.rmtree(old)
    return final_dir
