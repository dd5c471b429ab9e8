"""The shipped training configs: they parse as `slam train` options and hold the paper's settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from slam_align.config import resolve_options
from slam_align.train.train import TrainOptions
from slam_align.train.trainer import accumulation_steps

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.mark.parametrize("name", sorted(p.name for p in (CONFIGS / "train").glob("*.yaml")))
def test_every_train_config_parses(name):
    options = resolve_options(TrainOptions, str(CONFIGS / "train" / name), {})
    assert options.output and options.model
    if options.deepspeed:
        assert (CONFIGS.parent / options.deepspeed).is_file()


@pytest.mark.parametrize(
    "name, model, batch_per_gpu",
    [
        ("slam-metamath-7b.yaml", "meta-math/MetaMath-7B-V1.0", 4),
        ("slam-metamath-13b.yaml", "meta-math/MetaMath-13B-V1.0", 2),
    ],
)
def test_paper_slam_settings(name, model, batch_per_gpu, monkeypatch):
    o = resolve_options(TrainOptions, str(CONFIGS / "train" / name), {})
    assert (o.model, o.method, o.layers, o.modules) == (model, "slam", "0-5", ["ffn"])
    assert (o.learning_rate, o.lr_scheduler_type, o.num_train_epochs, o.cutoff_len) == (
        2e-5,
        "cosine",
        4,
        1024,
    )
    assert o.effective_batch_size == 512 and o.bf16 and o.deepspeed.endswith("zero2.json")
    monkeypatch.setenv("WORLD_SIZE", "8")
    assert accumulation_steps(o) * batch_per_gpu * 8 == 512


def test_two_stage_baseline_settings():
    o = resolve_options(TrainOptions, str(CONFIGS / "train" / "qalign-two-stage-7b.yaml"), {})
    assert o.method == "two-stage" and o.num_train_epochs == 3 and o.learning_rate == 2e-5
    assert o.effective_batch_size == 128 and o.stage1_data and o.stage2_data


def test_engine_configs():
    z2 = json.loads((CONFIGS / "deepspeed" / "zero2.json").read_text())
    z3 = json.loads((CONFIGS / "deepspeed" / "zero3.json").read_text())
    assert z2["zero_optimization"]["stage"] == 2 and z3["zero_optimization"]["stage"] == 3
    assert z3["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    fsdp = yaml.safe_load((CONFIGS / "accelerate" / "fsdp-8gpu.yaml").read_text())
    assert fsdp["distributed_type"] == "FSDP" and fsdp["fsdp_config"]["fsdp_version"] == 2
    fsdp2 = json.loads((CONFIGS / "fsdp" / "fsdp2.json").read_text())
    assert fsdp2["version"] == 2 and fsdp2["state_dict_type"] == "FULL_STATE_DICT"
    cpu = yaml.safe_load((CONFIGS / "accelerate" / "ddp-cpu-2proc.yaml").read_text())
    assert cpu["use_cpu"] is True and cpu["num_processes"] == 2 and cpu["distributed_type"] == "MULTI_GPU"
