"""Loaders from ``slam_align.models.loading``, with a minimal fall-back while it is absent.

Training loads the config, model and tokenizer through engineer A's loaders (hub id,
local directory). Only if that module is missing (a partial checkout) do the plain
Transformers calls below stand in for them.
"""

from __future__ import annotations

from slam_align.errors import SlamError

try:
    from slam_align.models.loading import load_config, load_model, load_tokenizer  # noqa: F401
except ImportError:  # pragma: no cover - only without slam_align.models.loading

    def load_config(model: str):
        from transformers import AutoConfig

        try:
            return AutoConfig.from_pretrained(model)
        except (OSError, ValueError) as e:
            raise SlamError(f"{model}: cannot load the model config ({e})") from None

    def load_model(model: str, dtype="auto", device=None):
        from transformers import AutoModelForCausalLM

        try:
            m = AutoModelForCausalLM.from_pretrained(model, dtype=dtype)
        except (OSError, ValueError) as e:
            raise SlamError(f"{model}: cannot load the model ({e})") from None
        return m.to(device) if device else m

    def load_tokenizer(model: str):
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(model)
        except (OSError, ValueError) as e:
            raise SlamError(f"{model}: cannot load the tokenizer ({e})") from None
