"""Configs, models and tokenizers from a hub id, a local directory or a ``config.json``.

Every failure is one :class:`SlamError` line (no traceback): a malformed ``config.json``
names the file and line, an unreachable hub says so and suggests a local path.
``meta_model(config)`` builds the model on the meta device: shapes and names only, no
memory and no download, in seconds even for 70B parameters.
"""

from __future__ import annotations

import os
from pathlib import Path

from slam_align.errors import SlamError

DTYPES = {
    "auto": "auto",
    "bf16": "bfloat16",
    "bfloat16": "bfloat16",
    "fp16": "float16",
    "half": "float16",
    "float16": "float16",
    "fp32": "float32",
    "float": "float32",
    "float32": "float32",
}


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith((".", "/", "~"))
        or model.endswith(".json")
        or model.count("/") > 1
        or "\\" in model
        or (os.sep != "/" and os.sep in model)
    )


def _first_line(e: BaseException) -> str:
    """The gist of an exception in one line (a header ending in ':' takes its next line too)."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    text = lines[0] + (" " + lines[1] if lines[0].endswith(":") and len(lines) > 1 else "")
    return text[:300]


def _config_from_file(path: Path, trust_remote_code: bool = False):
    from slam_align.io import read_json

    data = read_json(path, what="model config")  # before importing transformers: fast errors
    if not isinstance(data, dict):
        raise SlamError(f"{path}: expected a JSON object of config fields, got {type(data).__name__}")
    from transformers import CONFIG_MAPPING

    model_type = data.get("model_type")
    if not model_type:
        raise SlamError(f"{path}: field 'model_type' is missing (e.g. \"llama\")")
    if model_type not in CONFIG_MAPPING and trust_remote_code and "auto_map" in data:
        from transformers import AutoConfig

        try:  # a model with its own code: let transformers import it
            return AutoConfig.from_pretrained(str(path.parent), trust_remote_code=True)
        except Exception as e:
            raise SlamError(f"{path}: cannot load the model's own config code ({_first_line(e)})") from None
    if model_type not in CONFIG_MAPPING:
        hint = (
            "; it names its own code (auto_map): pass --trust-remote-code if you trust it"
            if "auto_map" in data
            else ""
        )
        raise SlamError(
            f"{path}: model_type {model_type!r} is not known to this version of transformers{hint}"
        )
    try:
        return CONFIG_MAPPING[model_type].from_dict(data)
    except Exception as e:  # a field of the wrong type or value
        raise SlamError(f"{path}: not a valid {model_type} config ({_first_line(e)})") from None


def load_config(model: str, trust_remote_code: bool = False):
    """The model's config from a hub id, a local model directory or a path to a config.json."""
    model = str(model)
    path = Path(model).expanduser()
    if path.is_file():
        return _config_from_file(path, trust_remote_code)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise SlamError(f"{path}: no config.json in this directory (is it a Transformers model?)")
        return _config_from_file(path / "config.json", trust_remote_code)
    if _looks_like_path(model):
        raise SlamError(f"{model}: no such file or directory (expected a model directory or a config.json)")
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code)
    except Exception as e:
        raise SlamError(
            f"cannot load the config of '{model}' from the Hugging Face Hub ({_first_line(e)}); "
            f"check the id and the network, or pass a local directory or config.json"
        ) from None


def _causal_lm_config(config):
    """A multimodal wrapper's text config when only that is in the architecture table."""
    from slam_align.models.architectures import ARCHITECTURES

    text = getattr(config, "text_config", None)
    if config.model_type not in ARCHITECTURES and getattr(text, "model_type", None) in ARCHITECTURES:
        return text
    return config


def meta_model(config, trust_remote_code: bool = False):
    """The causal LM of ``config`` on the meta device (no memory, no weights)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = _causal_lm_config(config)
    try:
        with torch.device("meta"):
            return AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except Exception as e:
        raise SlamError(
            f"cannot build a {config.model_type} causal LM from its config ({_first_line(e)})"
        ) from None


def resolve_dtype(dtype, device: str | None = None):
    """A torch dtype from a name (``bf16``, ``float32``...).

    ``auto`` means the checkpoint's own dtype (returned as ``"auto"`` for Transformers), or,
    when ``device`` is given (inference), bf16 on a GPU that supports it (else fp16) and
    fp32 on a CPU, where half precision is slow and lossy.
    """
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = DTYPES.get(str(dtype).lower())
    if name is None:
        raise SlamError(f"dtype: unknown value {dtype!r}; expected one of: {', '.join(DTYPES)}")
    if name != "auto":
        return getattr(torch, name)
    if device is None:
        return "auto"
    if str(device).startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def resolve_device(device: str | None) -> str:
    """``device`` as given, else ``cuda`` when a GPU is there, else ``cpu``; checked now."""
    import torch

    if not device:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise SlamError(f"device: unknown device {device!r}; expected cpu, cuda or cuda:N") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise SlamError(f"device {device}: no CUDA GPU is available here; use --device cpu")
    return device


def load_model(model: str, dtype="auto", device=None, trust_remote_code: bool = False):
    """A causal LM with its weights, from a hub id or a local directory (``dtype``: a name or
    torch dtype, ``auto`` = the checkpoint's; see :func:`resolve_dtype`)."""
    from transformers import AutoModelForCausalLM

    model = str(model)
    path = Path(model).expanduser()
    if path.is_file():
        raise SlamError(f"{model}: a config file has no weights; pass the model's directory or hub id")
    if not path.exists() and _looks_like_path(model):
        raise SlamError(f"{model}: no such file or directory (expected a model directory or a hub id)")
    if path.is_dir():
        load_config(model, trust_remote_code)  # clear errors for a missing or malformed config.json
    try:
        m = AutoModelForCausalLM.from_pretrained(
            str(path) if path.exists() else model,
            dtype=resolve_dtype(dtype),
            trust_remote_code=trust_remote_code,
        )
    except SlamError:
        raise
    except Exception as e:
        raise SlamError(f"cannot load the model '{model}' ({_first_line(e)})") from None
    if device is not None:
        m = m.to(device)
    return m


def load_tokenizer(model: str, trust_remote_code: bool = False, padding_side: str | None = None):
    """The model's tokenizer; a tokenizer without a pad token pads with its eos token.

    ``padding_side="left"`` for batched generation (prompts must end together)."""
    from transformers import AutoTokenizer

    model = str(model)
    path = Path(model).expanduser()
    if path.is_file():
        path = path.parent
    if not path.exists() and _looks_like_path(model):
        raise SlamError(f"{model}: no such file or directory (expected a model directory or a hub id)")
    try:
        tok = AutoTokenizer.from_pretrained(
            str(path) if path.exists() else model, trust_remote_code=trust_remote_code
        )
    except Exception as e:
        raise SlamError(f"cannot load the tokenizer of '{model}' ({_first_line(e)})") from None
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise SlamError(
                f"the tokenizer of '{model}' has neither a pad nor an EOS token; cannot pad batches"
            )
        tok.pad_token = tok.eos_token
    if padding_side:
        tok.padding_side = padding_side
    return tok
