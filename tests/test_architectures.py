"""Layer discovery and freezing plans on tiny random models of every supported architecture.

Expected parameter names are written out by hand from the Transformers source (not
derived from the code under test).
"""

from __future__ import annotations

import pytest
import torch

from slam_align.errors import SlamError
from slam_align.models.accounting import count_parameters
from slam_align.models.apply_plan import apply_plan
from slam_align.models.architectures import find_layers
from slam_align.models.freeze_plan import build_plan
from slam_align.models.tiny import build_tiny_model

IDS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)
LAYERS = (0, 2)  # of 3: a selected, a skipped and a selected layer

_LLAMA_ATTN = [
    "self_attn.q_proj.weight",
    "self_attn.k_proj.weight",
    "self_attn.v_proj.weight",
    "self_attn.o_proj.weight",
]
_LLAMA_FFN = ["mlp.up_proj.weight", "mlp.down_proj.weight"]

# model_type -> (layer container, ffn names under --modules ffn, attention names)
EXPECTED = {
    "llama": ("model.layers", _LLAMA_FFN, _LLAMA_ATTN),
    "mistral": ("model.layers", _LLAMA_FFN, _LLAMA_ATTN),
    "qwen2": (
        "model.layers",
        _LLAMA_FFN,
        _LLAMA_ATTN + ["self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"],
    ),
    "qwen3": (
        "model.layers",
        _LLAMA_FFN,
        _LLAMA_ATTN + ["self_attn.q_norm.weight", "self_attn.k_norm.weight"],
    ),
    "gemma": ("model.layers", _LLAMA_FFN, _LLAMA_ATTN),
    "gemma2": ("model.layers", _LLAMA_FFN, _LLAMA_ATTN),
    "gemma3_text": (
        "model.layers",
        _LLAMA_FFN,
        _LLAMA_ATTN + ["self_attn.q_norm.weight", "self_attn.k_norm.weight"],
    ),
    "phi3": (
        "model.layers",
        ["mlp.gate_up_proj.weight", "mlp.down_proj.weight"],  # gate_up: up half only
        ["self_attn.qkv_proj.weight", "self_attn.o_proj.weight"],
    ),
    "gpt2": (
        "transformer.h",
        ["mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias"],
        ["attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight", "attn.c_proj.bias"],
    ),
    "gpt_neox": (
        "gpt_neox.layers",
        [
            "mlp.dense_h_to_4h.weight",
            "mlp.dense_h_to_4h.bias",
            "mlp.dense_4h_to_h.weight",
            "mlp.dense_4h_to_h.bias",
        ],
        [
            "attention.query_key_value.weight",
            "attention.query_key_value.bias",
            "attention.dense.weight",
            "attention.dense.bias",
        ],
    ),
    "opt": (
        "model.decoder.layers",
        ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"],
        [f"self_attn.{p}_proj.{w}" for p in ("q", "k", "v", "out") for w in ("weight", "bias")],
    ),
    "bloom": (
        "transformer.h",
        [
            "mlp.dense_h_to_4h.weight",
            "mlp.dense_h_to_4h.bias",
            "mlp.dense_4h_to_h.weight",
            "mlp.dense_4h_to_h.bias",
        ],
        [
            "self_attention.query_key_value.weight",
            "self_attention.query_key_value.bias",
            "self_attention.dense.weight",
            "self_attention.dense.bias",
        ],
    ),
    "falcon": (
        "transformer.h",
        ["mlp.dense_h_to_4h.weight", "mlp.dense_4h_to_h.weight"],
        ["self_attention.query_key_value.weight", "self_attention.dense.weight"],
    ),
    # MoE: every expert's up (fused with gate) and down; the router mlp.gate stays frozen.
    "mixtral": ("model.layers", ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"], _LLAMA_ATTN),
    "qwen2_moe": (
        "model.layers",
        [
            "mlp.experts.gate_up_proj",
            "mlp.experts.down_proj",
            "mlp.shared_expert.up_proj.weight",
            "mlp.shared_expert.down_proj.weight",
        ],
        _LLAMA_ATTN + ["self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"],
    ),
    "qwen3_moe": (
        "model.layers",
        ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"],
        _LLAMA_ATTN + ["self_attn.q_norm.weight", "self_attn.k_norm.weight"],
    ),
}
FUSED = {"phi3", "mixtral", "qwen2_moe", "qwen3_moe"}
SMALL_MOE = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32)


def tiny(model_type: str, layers: int = 3, **overrides):
    extra = SMALL_MOE if model_type == "qwen3_moe" else {}
    return build_tiny_model(model_type, num_layers=layers, hidden=32, **IDS, **extra, **overrides)


def trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def expected(container: str, rels: list[str], layers=LAYERS) -> set[str]:
    return {f"{container}.{i}.{r}" for i in layers for r in rels}


@pytest.mark.parametrize("model_type", sorted(EXPECTED))
def test_slam_plan_trains_exactly_ffn_up_and_down(model_type):
    model = tiny(model_type)
    container, ffn, attn = EXPECTED[model_type]
    plan = build_plan(model, method="slam", layers="0,2")
    apply_plan(model, plan)
    summary = count_parameters(model, plan)
    assert trainable(model) == expected(container, ffn)
    assert set(plan.partial) == (
        {n for n in expected(container, ffn) if "gate_up" in n} if model_type in FUSED else set()
    )
    # accounting counts only the up half of a fused gate_up tensor
    params = dict(model.named_parameters())
    want = sum(params[n].numel() // (2 if n in plan.partial else 1) for n in expected(container, ffn))
    assert summary["trainable_params"] == want
    assert 0 < summary["trainable_fraction"] < 1

    model = tiny(model_type)
    apply_plan(model, build_plan(model, method="attention", layers="0,2"))
    assert trainable(model) == expected(container, attn)


@pytest.mark.parametrize("model_type", ["llama", "phi3", "mixtral", "qwen2_moe", "gpt2"])
def test_ffn_all_and_layer_modules(model_type):
    model = tiny(model_type)
    container, ffn, _ = EXPECTED[model_type]
    gates = {
        "llama": ["mlp.gate_proj.weight"],
        "qwen2_moe": ["mlp.shared_expert.gate_proj.weight"],
    }.get(model_type, [])
    plan = build_plan(model, method="slam", layers="1", modules="ffn-all")
    apply_plan(model, plan)
    assert trainable(model) == expected(container, ffn + gates, layers=(1,))
    assert plan.partial == {}  # ffn-all trains fused gate_up tensors whole
    assert not any(".mlp.gate.weight" in n or "shared_expert_gate" in n for n in trainable(model))  # routers

    plan = build_plan(model, method="slam", layers="-1", modules="layer")
    apply_plan(model, plan)
    everything = {n for n, _ in model.named_parameters() if n.startswith(f"{container}.2.")}
    assert trainable(model) == everything and len(everything) > len(ffn)


def test_expert_index_is_never_a_layer_index():
    # 4 layers and 4 experts: a layer-index mix-up with expert indices would show here.
    model = tiny("mixtral", layers=4)
    infos = find_layers(model)
    assert [i.index for i in infos] == [0, 1, 2, 3]
    assert infos[3].prefix == "model.layers.3"
    assert infos[3].router == ["model.layers.3.mlp.gate.weight"]
    assert [type(m).__name__ for m in infos[3].ffn_experts] == ["MixtralExperts"]
    apply_plan(model, build_plan(model, layers="3"))
    assert trainable(model) == {
        "model.layers.3.mlp.experts.gate_up_proj",
        "model.layers.3.mlp.experts.down_proj",
    }


def test_find_layers_on_meta_device_and_act_modules():
    from transformers import AutoModelForCausalLM

    from slam_align.models.tiny import tiny_config

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(tiny_config("phi3", num_layers=2, hidden=32, **IDS))
    infos = find_layers(model)
    assert len(infos) == 2 and infos[1].ffn_gate_up == ["model.layers.1.mlp.gate_up_proj.weight"]
    assert infos[1].ffn_act_modules == [model.model.layers[1].mlp.down_proj]
    gpt2 = tiny("gpt2", layers=2)
    assert find_layers(gpt2)[0].ffn_act_modules == [gpt2.transformer.h[0].mlp.c_proj]


def test_multimodal_gemma3_uses_its_text_decoder_layers():
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model("gemma3"))
    infos = find_layers(model)  # not the vision tower's encoder layers
    assert len(infos) == model.config.text_config.num_hidden_layers
    assert infos[0].ffn_up == ["model.language_model.layers.0.mlp.up_proj.weight"]


def test_activation_modules_receive_the_ffn_activation():
    """The input of ffn_act_modules is act(gate(x)) * up(x), recomputed here by hand."""
    model = tiny("llama", layers=2).eval()
    info = find_layers(model)[1]
    seen = {}
    mlp_in = {}
    info.ffn_act_modules[0].register_forward_hook(lambda m, a, o: seen.setdefault("act", a[0]))
    model.model.layers[1].mlp.register_forward_hook(lambda m, a, o: mlp_in.setdefault("x", a[0]))
    with torch.no_grad():
        model(torch.tensor([[5, 6, 7, 8]]))
        mlp = model.model.layers[1].mlp
        ref = mlp.act_fn(mlp.gate_proj(mlp_in["x"])) * mlp.up_proj(mlp_in["x"])
    torch.testing.assert_close(seen["act"], ref)


def test_unknown_architecture_needs_patterns():
    model = tiny("llama", layers=3)
    model.config.model_type = "mystery"
    with pytest.raises(SlamError, match="--ffn-pattern"):
        find_layers(model)
    infos = find_layers(
        model,
        ffn_pattern=r"mlp\.(?P<up>up_proj)|mlp\.(?P<down>down_proj)|mlp\.(?P<gate>gate_proj)",
        attn_pattern=r"^self_attn\.",
    )
    assert infos[1].ffn_down == ["model.layers.1.mlp.down_proj.weight"]
    assert infos[1].ffn_gate == ["model.layers.1.mlp.gate_proj.weight"]
    assert infos[1].ffn_act_modules == [model.model.layers[1].mlp.down_proj]
    plan = build_plan(model, layers="0,2", ffn_pattern=r"mlp\.(?P<up>up_proj)|mlp\.(?P<down>down_proj)")
    apply_plan(model, plan)
    assert trainable(model) == expected("model.layers", _LLAMA_FFN)
    with pytest.raises(SlamError, match="not a valid regular expression"):
        find_layers(model, ffn_pattern="mlp.(")


def test_gradients_flow_only_to_the_plan():
    model = tiny("qwen2_moe", layers=3)
    apply_plan(model, build_plan(model, layers="0,2"))
    ids = torch.tensor([[3, 4, 5, 6, 7, 8]])
    model(input_ids=ids, labels=ids).loss.backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert with_grad == trainable(model)
