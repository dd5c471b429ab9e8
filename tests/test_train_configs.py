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
    assert o.cutoff_len == 512 and o.warmup_ratio == 0.03  # QAlign's model_max_length and warm-up


# (config, layers, prompt, data, micro-batch x GPUs, save_steps, save_total_limit): the presets
PRESETS = [
    ("slam-paper-7b.yaml", "0-5", "alpaca", "runs/data/slam-two-kind", 4 * 8, 25, 16),
    ("slam-paper-13b.yaml", "0-5", "alpaca", "runs/data/slam-two-kind", 2 * 8, 10, 20),
    ("slam-released-7b.yaml", "0-4", "llamafactory-default", "runs/data/slam-two-kind", 64 * 4, 25, 16),
    ("slam-released-13b.yaml", "0-5", "llamafactory-default", "runs/data/slam-two-kind", 32 * 8, 10, 20),
    ("slam-metamath-7b.yaml", "0-5", "alpaca", "runs/data/slam", 4 * 8, 200, 2),
    ("slam-metamath-13b.yaml", "0-5", "alpaca", "runs/data/slam", 2 * 8, 200, 2),
]


@pytest.mark.parametrize("name, layers, prompt, data, per_step, save_steps, keep", PRESETS)
def test_presets(name, layers, prompt, data, per_step, save_steps, keep):
    """Paper (6 layers, both sizes), released scripts (7B: layers 0-4, LLaMA-Factory's template,
    the two-kind data, their checkpoint cadence) and the project's default, one config each."""
    o = resolve_options(TrainOptions, str(CONFIGS / "train" / name), {})
    assert (o.method, o.modules, o.layers, o.prompt, o.data) == ("slam", ["ffn"], layers, prompt, [data])
    assert (o.learning_rate, o.lr_scheduler_type, o.warmup_ratio, o.num_train_epochs, o.cutoff_len) == (
        2e-5,
        "cosine",
        0.0,
        4,
        1024,
    )
    assert o.effective_batch_size == 512 and 512 % per_step == 0 and o.bf16
    assert o.deepspeed.endswith("zero2.json") and (o.save_steps, o.save_total_limit) == (save_steps, keep)
    assert ("13b" in name) == ("13B" in o.model)
    if "released" in name:  # the HF defaults the released scripts ran with, written out
        assert (o.optim, o.weight_decay, o.max_grad_norm, o.seed, o.dtype) == (
            "adamw_torch",
            0.0,
            1.0,
            42,
            "float32",
        )


def test_every_data_path_of_a_train_config_is_built_by_a_shipped_data_config():
    """runs/data/NAME read by a training config: some configs/data/*.yaml says how to build it."""
    recipes = "\n".join(p.read_text() for p in (CONFIGS / "data").glob("*.yaml"))
    for path in sorted((CONFIGS / "train").glob("*.yaml")):
        o = resolve_options(TrainOptions, str(path), {})
        for item in [*o.data, *o.stage1_data, *o.stage2_data]:
            folder = item.removesuffix("/train.jsonl")
            assert f"--output {folder}\n" in recipes or f"--output {folder} " in recipes, (path.name, item)


@pytest.mark.parametrize("name", sorted(p.name for p in (CONFIGS / "data").glob("*.yaml")))
def test_every_data_config_parses(name):
    from slam_align.config import load_yaml_config
    from slam_align.data.build import BuildOptions
    from slam_align.data.sources import parse_sources

    cfg = load_yaml_config(CONFIGS / "data" / name)
    parse_sources(BuildOptions(**{**cfg, "output": "x"}).sources)


def test_english_source_is_optional_in_every_mixture():
    """Each mixture with the project's English source has a two-kind twin without it."""
    from slam_align.config import load_yaml_config

    for full, twin in (
        ("slam-mixture.yaml", "slam-two-kind.yaml"),
        ("shared-sample.yaml", "shared-sample-two-kind.yaml"),
    ):
        a = load_yaml_config(CONFIGS / "data" / full)["sources"]
        b = load_yaml_config(CONFIGS / "data" / twin)["sources"]
        assert [s["name"] for s in a] == ["en-question-en-answer", *[s["name"] for s in b]]
        assert a[1:] == b


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
