"""``slam plan`` as a real subprocess: JSON interface, table, memory, one-line errors."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

pytestmark = pytest.mark.slow  # every test here trains or runs slam as a subprocess


@pytest.fixture(scope="module")
def llama7b(tmp_path_factory):
    from transformers import LlamaConfig

    out = tmp_path_factory.mktemp("llama2-7b")
    LlamaConfig(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        vocab_size=32000,
    ).save_pretrained(out)
    return out


def one_error_line(proc) -> str:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_plan_json_llama2_7b_with_memory(cli, llama7b):
    proc = cli(
        "plan", "--model", llama7b / "config.json", "--method", "slam", "--layers", "0-5", "--modules", "ffn",
        "--json", "--memory", "--gpus", "1", "--micro-batch-size", "1", "--seq-len", "1024", "--zero", "0",
        "--precision", "bf16", "--gradient-checkpointing",
    )  # fmt: skip
    result = json.loads(proc.stdout)
    assert result["model_type"] == "llama" and result["num_layers"] == 32
    assert result["layers"] == [0, 1, 2, 3, 4, 5] and result["modules"] == ["ffn"]
    assert result["trainable_params"] == 541_065_216
    assert result["total_params"] == 6_738_415_616
    assert round(result["trainable_fraction"], 4) == 0.0803
    mem = result["memory"]
    assert mem["fits"] and mem["total_bytes"] < 80 * 1024**3
    assert mem["total_bytes"] == sum(
        mem[k] for k in ("weights_bytes", "gradients_bytes", "optimizer_states_bytes", "activations_bytes")
    )


def test_plan_table_full_does_not_fit(cli, llama7b):
    proc = cli("plan", "--model", llama7b, "--method", "full", "--memory", "--seq_len", "1024")
    assert "6,738,415,616 of 6,738,415,616" in proc.stdout
    assert "does NOT fit in 80 GiB" in proc.stdout


def test_plan_tiny_model_dir_yaml_and_lora(cli, tiny_model_factory, tmp_path):
    model_dir = tiny_model_factory("phi3")
    config = tmp_path / "plan.yaml"
    config.write_text(f"model: {model_dir}\nlayers: '-1'\njson: true\n")
    result = json.loads(cli("plan", config).stdout)
    assert result["model_type"] == "phi3" and result["layers"] == [3]
    assert set(result["partial"]) == {"model.layers.3.mlp.gate_up_proj.weight"}
    assert result["trainable_names"] == [
        "model.layers.3.mlp.gate_up_proj.weight",
        "model.layers.3.mlp.down_proj.weight",
    ]
    # a flag overrides the YAML file; lora adds adapter parameters only
    lora = json.loads(cli("plan", config, "--method", "lora", "--lora-r", "4").stdout)
    assert (
        lora["lora"]["layers_to_transform"] == [3]
        and 0 < lora["trainable_params"] < result["trainable_params"]
    )


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--layers", "40"], "layer 40 does not exist: model has 32 layers (0-31)"),
        (["--layers", ""], "empty layer set"),
        (
            ["--method", "magic"],
            "'method' is 'magic'; expected one of: slam, full, two-stage, lora, attention, random",
        ),
    ],
)
def test_plan_bad_input_one_line(llama7b, args, expected):
    proc = run_cli("plan", "--model", llama7b, *args, check=False)
    assert expected in one_error_line(proc)


def test_plan_bad_files_one_line(tmp_path):
    bad = tmp_path / "config.json"
    bad.write_text('{"model_type": "llama", "hidden_size": 64,\n')
    assert f"{bad}: line" in one_error_line(run_cli("plan", "--model", bad, check=False))
    offline = run_cli("plan", "--model", "nobody-xyz/no-such-model", check=False, env={"HF_HUB_OFFLINE": "1"})
    assert "nobody-xyz/no-such-model" in one_error_line(offline)
    assert "no such file" in one_error_line(run_cli("plan", "--model", tmp_path / "missing", check=False))


CUSTOM_CONFIG = """from transformers import LlamaConfig


class SlamToyConfig(LlamaConfig):
    model_type = "slamtoy"
"""
CUSTOM_MODEL = """from transformers import LlamaForCausalLM

from .configuration_slamtoy import SlamToyConfig


class SlamToyForCausalLM(LlamaForCausalLM):
    config_class = SlamToyConfig
"""


def test_trust_remote_code_loads_a_model_with_its_own_code(cli, tmp_path):
    """A checkpoint whose config names its own Python code (auto_map) is planned only with
    --trust-remote-code; without it, one line says which flag would load it."""
    model = tmp_path / "custom"
    model.mkdir()
    (model / "configuration_slamtoy.py").write_text(CUSTOM_CONFIG)
    (model / "modeling_slamtoy.py").write_text(CUSTOM_MODEL)
    config = {
        "model_type": "slamtoy",
        "architectures": ["SlamToyForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_slamtoy.SlamToyConfig",
            "AutoModelForCausalLM": "modeling_slamtoy.SlamToyForCausalLM",
        },
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": 256,
    }
    (model / "config.json").write_text(json.dumps(config))
    patterns = [
        "--ffn-pattern",
        r"mlp\.(?P<up>up_proj)|mlp\.(?P<down>down_proj)",
        "--attn-pattern",
        "self_attn",
    ]
    refused = cli("plan", "--model", model, "--layers", "0", "--json", *patterns, check=False)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "--trust-remote-code" in refused.stderr
    result = json.loads(
        cli("plan", "--model", model, "--layers", "0", "--json", "--trust-remote-code", *patterns).stdout
    )
    assert result["architecture"] == "SlamToyForCausalLM" and result["num_layers"] == 3
    assert result["trainable_names"] == [
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
    ]
