"""Helpers shared by tests that read or shape saved tiny models."""

from __future__ import annotations

from pathlib import Path


def model_tensors(model_dir: Path) -> dict:
    """Every tensor of a saved model (all shards), without slam's delta file."""
    from safetensors.torch import load_file

    out = {}
    for f in sorted(Path(model_dir).glob("*.safetensors")):
        if f.name != "slam_delta.safetensors":
            out.update(load_file(str(f)))
    return out


def restricted_head_copy(src: Path, out: Path, tokens: list[str], seed: int) -> Path:
    """Save a copy of the model at ``src`` whose LM head can only emit ``tokens`` (plus EOS).

    A random model almost never writes a number or a choice letter; a head restricted to a few
    tokens makes it write them, so accuracy checks have something to find and can fail.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(src))
    model = AutoModelForCausalLM.from_pretrained(str(src))
    vocab = tok.get_vocab()
    keep = [vocab[t] for t in tokens] + [tok.eos_token_id]
    with torch.no_grad():
        w = model.lm_head.weight
        mask = torch.zeros(w.shape[0], dtype=torch.bool)
        mask[keep] = True
        w[~mask] = 0
        gen = torch.Generator().manual_seed(seed)
        w[mask] = torch.randn(int(mask.sum()), w.shape[1], generator=gen) * 2
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out
