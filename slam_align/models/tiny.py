"""Tiny randomly initialised models built from real architectures' config classes.

No weights can be downloaded in tests, CI or the demo, so everything that loads a model
is exercised on these: the same Transformers classes as the real checkpoints, only
small. A real BPE tokenizer is trained with the ``tokenizers`` library on given text.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from slam_align.errors import SlamError

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 512, output_dir: str | Path | None = None):
    """Train a byte-level BPE tokenizer on ``texts``; return a ``PreTrainedTokenizerFast``.

    Byte-level means any Unicode text (Bengali, Thai, CJK...) encodes without unknowns.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL_TOKENS)
    fast.padding_side = "right"  # training; generation switches to left padding itself
    if output_dir is not None:
        fast.save_pretrained(str(output_dir))
    return fast


# Small but structurally faithful settings per architecture: >= 2 heads, gated FFNs where
# the real model has them, MoE with several experts. Values are tiny so tests stay fast.
def tiny_config(model_type: str, vocab_size: int = 512, num_layers: int = 4, hidden: int = 64, **overrides):
    """A config of the real class for ``model_type`` (llama, qwen2, mistral, gpt2, ...)."""
    from transformers import AutoConfig

    inter = hidden * 2
    common = dict(vocab_size=vocab_size)
    per_type = {
        "gpt2": dict(n_layer=num_layers, n_embd=hidden, n_head=4, n_positions=512, n_inner=inter),
        "gpt_neox": dict(
            num_hidden_layers=num_layers,
            hidden_size=hidden,
            num_attention_heads=4,
            intermediate_size=inter,
            max_position_embeddings=512,
        ),
        "opt": dict(
            num_hidden_layers=num_layers,
            hidden_size=hidden,
            num_attention_heads=4,
            ffn_dim=inter,
            word_embed_proj_dim=hidden,
            max_position_embeddings=512,
        ),
        "bloom": dict(n_layer=num_layers, hidden_size=hidden, n_head=4),
        "falcon": dict(
            num_hidden_layers=num_layers,
            hidden_size=hidden,
            num_attention_heads=4,
            new_decoder_architecture=False,
            multi_query=True,
        ),
        "mixtral": dict(
            num_hidden_layers=num_layers,
            hidden_size=hidden,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=inter,
            num_local_experts=4,
            num_experts_per_tok=2,
            max_position_embeddings=512,
        ),
        "qwen2_moe": dict(
            num_hidden_layers=num_layers,
            hidden_size=hidden,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=inter,
            moe_intermediate_size=hidden,
            shared_expert_intermediate_size=inter,
            num_experts=4,
            num_experts_per_tok=2,
            max_position_embeddings=512,
            decoder_sparse_step=1,
        ),
    }
    llama_like = dict(
        num_hidden_layers=num_layers,
        hidden_size=hidden,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=inter,
        max_position_embeddings=512,
    )
    kwargs = {**common, **per_type.get(model_type, llama_like)}
    if model_type in ("gemma", "gemma2", "gemma3_text", "qwen3"):
        kwargs["head_dim"] = hidden // 4
    kwargs.update(overrides)
    try:
        return AutoConfig.for_model(model_type, **kwargs)
    except ValueError as e:
        raise SlamError(f"unknown model type '{model_type}' for a tiny config: {e}") from None


def build_tiny_model(
    model_type: str = "llama",
    tokenizer=None,
    seed: int = 0,
    output_dir: str | Path | None = None,
    **config_overrides,
):
    """A randomly initialised causal LM of ``model_type``; saved with ``tokenizer`` when ``output_dir`` is set."""
    import torch
    from transformers import AutoModelForCausalLM

    vocab = len(tokenizer) if tokenizer is not None else config_overrides.pop("vocab_size", 512)
    config = tiny_config(model_type, vocab_size=vocab, **config_overrides)
    if tokenizer is not None:
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            setattr(config, name, getattr(tokenizer, name))
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    if output_dir is not None:
        model.save_pretrained(str(output_dir))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(output_dir))
    return model
