"""``TrainOptions``: the options of ``slam train`` (CLI flags, YAML keys and Python API).

The defaults are small-run friendly; ``configs/train/*.yaml`` hold the paper's settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from slam_align.config import option

METHODS = ("slam", "full", "two-stage", "lora", "attention", "random")


@dataclass
class TrainOptions:
    model: str = option(help="base model: hub id or local directory")
    output: str = option(help="run directory (final model in OUTPUT/final)", aliases=["-o"])
    method: str = option("slam", help="what to train", choices=list(METHODS))
    layers: str = option(
        "0-5", help="layers for slam / attention / lora: '0-5', '0,2,4', '-1', or 'auto:PATH/layers.json'"
    )
    modules: str | None = option(
        None, help="modules within the layers (ffn = up+down, SLAM's; ffn-all; attention; layer)"
    )
    extras: list[str] = option([], help="also train: embeddings, lm_head")
    num_random_layers: int = option(6, help="method random: how many layers to draw (seeded)")
    ffn_pattern: str | None = option(None, help="regex naming FFN modules for unknown architectures")
    attn_pattern: str | None = option(None, help="regex naming attention modules for unknown architectures")
    # data
    data: list[str] = option(
        [], help="training files (Alpaca JSON/JSONL), optionally weighted: a.jsonl:0.7,b.jsonl:0.3"
    )
    stage1_data: list[str] = option([], help="two-stage: question-alignment files (default: kind=alignment)")
    stage2_data: list[str] = option([], help="two-stage: response files (default: the other rows of --data)")
    field_map: list[str] = option([], help="rename input fields, e.g. instruction=query,output=response")
    prompt: str = option("alpaca", help="prompt template name (slam_align.data.prompts)")
    cutoff_len: int = option(1024, help="truncate examples to this many tokens")
    limit: int | None = option(None, help="use at most this many training examples (per stage)")
    # optimisation
    max_steps: int = option(-1, help="optimizer steps per stage (-1: use --num-train-epochs)")
    num_train_epochs: float = option(1.0, help="epochs per stage when --max-steps is -1")
    learning_rate: float = option(2e-5, help="peak learning rate")
    lr_scheduler_type: str = option(
        "cosine", help="Transformers scheduler name (cosine, linear, constant...)"
    )
    warmup_ratio: float = option(0.0, help="fraction of steps for linear warm-up")
    optim: str | None = option(
        None,
        help="optimizer, as Transformers' TrainingArguments.optim names it (adamw_torch_fused, "
        "adamw_torch, adafactor, ...; default: the Trainer's, adamw_torch_fused)",
    )
    weight_decay: float = option(0.0, help="AdamW weight decay (trainable parameters only)")
    max_grad_norm: float = option(1.0, help="gradient clipping")
    per_device_train_batch_size: int = option(4, help="micro-batch per device")
    gradient_accumulation_steps: int = option(1, help="micro-batches per optimizer step")
    effective_batch_size: int | None = option(
        None, help="global batch; sets gradient accumulation = this / (micro-batch x processes)"
    )
    seed: int = option(42, help="seed for initialisation, data order and random layers")
    # precision and engines
    dtype: str = option(
        "auto",
        help="weights' dtype while training (auto = the base's)",
        choices=["auto", "float32", "bfloat16"],
    )
    bf16: bool = option(False, help="bf16 mixed precision (GPU)")
    gradient_checkpointing: bool = option(False, help="recompute activations in backward to save memory")
    deepspeed: str | None = option(None, help="DeepSpeed JSON config (configs/deepspeed/zero2.json)")
    fsdp: str | None = option(None, help="Trainer FSDP spec, e.g. 'full_shard auto_wrap'")
    fsdp_config: str | None = option(None, help="FSDP JSON config for --fsdp")
    # LoRA
    lora_r: int = option(8, help="LoRA rank")
    lora_alpha: int = option(16, help="LoRA alpha")
    lora_dropout: float = option(0.0, help="LoRA dropout")
    # run directory
    save_steps: int = option(0, help="checkpoint every K steps (0: only the final model)")
    save_total_limit: int | None = option(None, help="keep at most this many checkpoints")
    logging_steps: int = option(1, help="log the loss every K steps")
    resume: bool = option(False, help="continue OUTPUT from its newest checkpoint")
    overwrite: bool = option(False, help="replace an existing OUTPUT")
    save_delta: bool = option(True, help="subset methods: also write final/slam_delta.safetensors")
    progress: bool = option(True, help="show progress bars")
