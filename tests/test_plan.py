"""Freezing plans: layer specs, the paper's parameter counts, fused gate_up exactness,
LoRA targets, gradient checkpointing with frozen embeddings, memory estimates."""

from __future__ import annotations

import json
import re

import pytest
import torch

from slam_align.errors import SlamError
from slam_align.models.accounting import count_parameters, estimate_memory, model_dims
from slam_align.models.apply_plan import apply_plan
from slam_align.models.freeze_plan import PlanSpec, build_plan
from slam_align.models.layers import LAYERS_FORMAT, format_layers, parse_layers, write_layers_file
from slam_align.models.loading import load_config, meta_model
from slam_align.models.lora import lora_config, lora_targets
from slam_align.models.tiny import build_tiny_model

IDS = dict(pad_token_id=0, bos_token_id=1, eos_token_id=2)
GIB = 1024**3


def llama_config_file(tmp_path, hidden, inter, layers, heads):
    from transformers import LlamaConfig

    out = tmp_path / f"llama-{hidden}"
    LlamaConfig(
        hidden_size=hidden,
        intermediate_size=inter,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        vocab_size=32000,
    ).save_pretrained(out)
    return out / "config.json"


# ----------------------------------------------------------------------------- layer specs


@pytest.mark.parametrize(
    "spec,want",
    [
        ("0-5", [0, 1, 2, 3, 4, 5]),
        ("0,2,4", [0, 2, 4]),
        ("4,0,2,2", [0, 2, 4]),
        ("-1", [31]),
        ("-3--1", [29, 30, 31]),
        ("0-1, 30-31", [0, 1, 30, 31]),
        ("all", list(range(32))),
        (7, [7]),
        ([1, -2], [1, 30]),
    ],
)
def test_parse_layers(spec, want):
    assert parse_layers(spec, 32) == want
    assert parse_layers(format_layers(want), 32) == want  # round trip


@pytest.mark.parametrize(
    "spec,message",
    [
        ("40", "layer 40 does not exist: model has 32 layers (0-31)"),
        ("30-40", "layer 40 does not exist"),
        ("-33", "layer -33 does not exist"),
        ("", "empty layer set"),
        (",", "empty layer set"),
        ("5-2", "is empty"),
        ("a-b", "cannot read"),
        ("auto", "needs a path"),
    ],
)
def test_parse_layers_errors(spec, message):
    with pytest.raises(SlamError, match=re.escape(message)):
        parse_layers(spec, 32)


def test_parse_layers_auto(tmp_path):
    write_layers_file(tmp_path / "layers.json", {"selected": [3, 1, 2], "num_layers": 8})
    assert json.loads((tmp_path / "layers.json").read_text())["format"] == LAYERS_FORMAT
    assert parse_layers(f"auto:{tmp_path}", 8) == [1, 2, 3]
    assert parse_layers(f"auto:{tmp_path / 'layers.json'}", 8) == [1, 2, 3]
    with pytest.raises(SlamError, match="selection was made on a model with 8 layers"):
        parse_layers(f"auto:{tmp_path}", 32)
    (tmp_path / "bad.json").write_text(json.dumps({"format": LAYERS_FORMAT, "selected": []}))
    with pytest.raises(SlamError, match="empty"):
        parse_layers(f"auto:{tmp_path / 'bad.json'}", 8)
    with pytest.raises(SlamError, match="not found"):
        parse_layers(f"auto:{tmp_path / 'missing.json'}", 8)
    # A file that merely looks like a selection is refused: the format tag says who wrote it.
    (tmp_path / "untagged.json").write_text(json.dumps({"selected": [1, 2], "num_layers": 8}))
    with pytest.raises(SlamError, match="not a layers file of slam identify"):
        parse_layers(f"auto:{tmp_path / 'untagged.json'}", 8)


# ----------------------------------------------------------------------------- the paper's numbers


@pytest.mark.parametrize(
    "dims,trainable,total,percent",
    [
        ((4096, 11008, 32, 32), 541_065_216, 6_738_415_616, "8.03"),  # Llama-2-7B
        ((5120, 13824, 40, 40), 849_346_560, 13_015_864_320, "6.53"),  # Llama-2-13B
    ],
)
def test_llama2_slam_counts(tmp_path, dims, trainable, total, percent):
    model = meta_model(load_config(str(llama_config_file(tmp_path, *dims))))
    plan = build_plan(model, method="slam", layers="0-5")
    counts = count_parameters(model, plan)
    assert counts["trainable_params"] == trainable
    assert counts["total_params"] == total
    assert f"{100 * counts['trainable_fraction']:.2f}" == percent
    assert len(plan.trainable_names) == 12 and all(".mlp.gate_proj" not in n for n in plan.trainable_names)


def test_memory_llama2_7b_slam_fits_full_does_not(tmp_path):
    config = load_config(str(llama_config_file(tmp_path, 4096, 11008, 32, 32)))
    model = meta_model(config)
    dims = model_dims(config, model)
    settings = dict(gpus=1, micro_batch_size=1, seq_len=1024, precision="bf16", gradient_checkpointing=True)
    slam = count_parameters(model, build_plan(model, method="slam", layers="0-5"))
    full = count_parameters(model, build_plan(model, method="full"))
    m_slam = estimate_memory(slam["total_params"], slam["trainable_params"], dims, **settings)
    m_full = estimate_memory(full["total_params"], full["trainable_params"], dims, **settings)
    assert m_slam["fits"] and m_slam["total_bytes"] < 80 * GIB
    assert not m_full["fits"] and m_full["total_bytes"] > 80 * GIB
    # the parts add up; AdamW fp32 m, v and master copy = 12 bytes per trainable parameter
    parts = ("weights", "gradients", "optimizer_states", "activations")
    assert sum(m_slam[f"{p}_bytes"] for p in parts) == m_slam["total_bytes"]
    assert m_slam["weights_bytes"] == 2 * 6_738_415_616
    assert m_slam["optimizer_states_bytes"] == 12 * 541_065_216
    pure = estimate_memory(
        slam["total_params"], slam["trainable_params"], dims, **{**settings, "precision": "bf16-pure"}
    )
    assert pure["optimizer_states_bytes"] == 4 * 541_065_216  # bf16 m and v, no master copy
    # ZeRO-3 on 8 GPUs shards everything: full fine-tuning fits then
    z3 = estimate_memory(
        full["total_params"], full["trainable_params"], dims, **{**settings, "gpus": 8}, zero=3
    )
    assert z3["fits"] and z3["weights_bytes"] == 2 * 6_738_415_616 // 8
    # no checkpointing costs more activation memory
    nock = estimate_memory(
        slam["total_params"], slam["trainable_params"], dims, **{**settings, "gradient_checkpointing": False}
    )
    assert nock["activations"]["layers"] > 10 * m_slam["activations"]["layers"]


@pytest.mark.parametrize("method", ["full", "slam"])
def test_activation_estimate_matches_saved_tensors(method):
    """The activation formula against the bytes autograd really saves (tiny Llama, bf16, SDPA)."""
    from slam_align.models.accounting import activation_bytes

    model = build_tiny_model("llama", num_layers=4, hidden=128, **IDS).to(torch.bfloat16).train()
    apply_plan(model, build_plan(model, method=method, layers="0-1"))
    params = {p.data_ptr() for p in model.parameters()}
    saved: dict = {}

    def pack(t):
        if t.data_ptr() not in params:  # activations, not weights
            saved[t.data_ptr()] = max(saved.get(t.data_ptr(), 0), t.untyped_storage().nbytes())
        return t

    ids = torch.randint(3, 500, (2, 256), generator=torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids)
    estimate = activation_bytes(model_dims(model.config, model), 2, 256, 2, checkpointing=False)["total"]
    assert 0.75 < sum(saved.values()) / estimate < 1.25


def test_meta_model_of_70b_is_fast(tmp_path):
    import time

    from transformers import LlamaConfig

    LlamaConfig(
        hidden_size=8192,
        intermediate_size=28672,
        num_hidden_layers=80,
        num_attention_heads=64,
        num_key_value_heads=8,
        vocab_size=32000,
    ).save_pretrained(tmp_path)
    start = time.perf_counter()
    model = meta_model(load_config(str(tmp_path)))
    counts = count_parameters(model, build_plan(model, layers="0-5"))
    assert time.perf_counter() - start < 60
    assert counts["total_params"] == 68_976_648_192  # Llama-2-70B


# ----------------------------------------------------------------------------- methods


def test_random_layers_are_seeded_and_distinct():
    model = build_tiny_model("llama", num_layers=8, hidden=32, **IDS)
    a = build_plan(model, method="random", num_random_layers=3, seed=1)
    b = build_plan(model, method="random", num_random_layers=3, seed=1)
    c = build_plan(model, method="random", num_random_layers=3, seed=2)
    assert a.layers == b.layers and len(set(a.layers)) == 3 and a.layers == sorted(a.layers)
    assert a.trainable_names == b.trainable_names
    assert {
        tuple(build_plan(model, method="random", num_random_layers=3, seed=s).layers) for s in range(6)
    } != {tuple(a.layers)}
    assert c.modules == ["ffn"]
    with pytest.raises(SlamError, match="num-random-layers"):
        build_plan(model, method="random", num_random_layers=9)


def test_full_extras_and_errors():
    model = build_tiny_model("llama", num_layers=2, hidden=32, **IDS)
    full = build_plan(model, method="full")
    assert full.trainable_names == [n for n, _ in model.named_parameters()]
    plan = build_plan(model, layers="0", extras="embeddings,lm-head,norm")
    assert {"model.embed_tokens.weight", "lm_head.weight", "model.norm.weight"} <= set(plan.trainable_names)
    with pytest.raises(SlamError, match="'method' is 'bogus'; expected one of"):
        build_plan(model, method="bogus")
    with pytest.raises(SlamError, match="unknown value 'mlp'"):
        build_plan(model, modules="mlp")
    with pytest.raises(SlamError, match="layer 5 does not exist: model has 2 layers"):
        build_plan(model, layers="0-5")
    other = build_tiny_model("gpt2", num_layers=2, hidden=32, **IDS)
    with pytest.raises(SlamError, match="does not have"):
        apply_plan(other, plan)


def test_tied_lm_head_extra_is_the_embedding():
    model = build_tiny_model("gemma", num_layers=2, hidden=32, **IDS)  # tied embeddings
    plan = build_plan(model, layers="0", extras="lm-head")
    assert "model.embed_tokens.weight" in plan.trainable_names


def test_gradient_checkpointing_with_frozen_embeddings():
    """Reentrant checkpointing drops the backward of blocks whose input needs no grad:
    apply_plan must make the (frozen) embedding output require grad."""
    model = build_tiny_model("llama", num_layers=2, hidden=32, **IDS)
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable({"use_reentrant": True})
    model.disable_input_require_grads()  # as when checkpointing is switched on without transformers' helper
    model.train()
    ids = torch.tensor([[3, 4, 5, 6]])
    up = model.model.layers[0].mlp.up_proj.weight

    for name, p in model.named_parameters():  # control: requires_grad alone
        p.requires_grad_(name == "model.layers.0.mlp.up_proj.weight")
    loss = model(input_ids=ids, labels=ids).loss
    assert not loss.requires_grad  # the checkpointed layer 0 would get no gradient at all

    apply_plan(model, build_plan(model, layers="0"))
    model(input_ids=ids, labels=ids).loss.backward()
    assert up.grad is not None and up.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- fused gate_up


def _train_steps(model, optimizer, steps=4):
    ids = torch.tensor([[3, 4, 5, 6, 7, 8, 9, 10]])
    for _ in range(steps):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def _halves(p):
    half = p.shape[-2] // 2
    return p.detach()[..., :half, :].clone(), p.detach()[..., half:, :].clone()


@pytest.mark.parametrize(
    "model_type,name",
    [
        ("phi3", "model.layers.1.mlp.gate_up_proj.weight"),
        ("mixtral", "model.layers.1.mlp.experts.gate_up_proj"),
    ],
)
def test_fused_gate_half_is_bitwise_frozen(model_type, name):
    torch.manual_seed(0)
    model = build_tiny_model(model_type, num_layers=2, hidden=32, **IDS)
    plan = build_plan(model, layers="1")
    assert name in plan.partial
    frozen = apply_plan(model, plan)
    p = dict(model.named_parameters())[name]
    gate0, up0 = _halves(p)

    # 1) AdamW with weight decay, partial tensors in the no-decay group (param_groups)
    _train_steps(model, torch.optim.AdamW(frozen.param_groups(0.1), lr=1e-2))
    gate1, up1 = _halves(p)
    assert torch.equal(gate1, gate0)
    assert not torch.equal(up1, up0)

    # 2) AdamW decaying everything: weight decay moves the gate half, restore() puts it back
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=1e-2, weight_decay=0.1)
    ids = torch.tensor([[3, 4, 5, 6]])
    for _ in range(3):
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad()
        assert not torch.equal(_halves(p)[0], gate0)  # the control: decay did move it
        if model_type == "phi3":
            assert frozen.restore() == 1
        else:  # the Trainer's way: a callback after each optimizer step
            from slam_align.train.trainer import _trainer_classes

            _trainer_classes()[1](frozen).on_step_end(None, None, None)
        assert torch.equal(_halves(p)[0], gate0)
    assert not torch.equal(_halves(p)[1], up1)


def test_fused_without_plan_hooks_gate_moves():
    """Control for the test above: requires_grad alone would let the gate half train."""
    model = build_tiny_model("phi3", num_layers=2, hidden=32, **IDS)
    p = model.model.layers[1].mlp.gate_up_proj.weight
    for q in model.parameters():
        q.requires_grad_(q is p)
    gate0, _ = _halves(p)
    _train_steps(model, torch.optim.AdamW([p], lr=1e-2, weight_decay=0.0), steps=2)
    assert not torch.equal(_halves(p)[0], gate0)


# ----------------------------------------------------------------------------- LoRA


@pytest.mark.parametrize(
    "model_type,want",
    [
        ("llama", {"model.layers.{i}.mlp.up_proj", "model.layers.{i}.mlp.down_proj"}),
        ("gpt2", {"transformer.h.{i}.mlp.c_fc", "transformer.h.{i}.mlp.c_proj"}),
        ("mixtral", {"model.layers.{i}.mlp.experts"}),
    ],
)
def test_lora_adapters_only_in_chosen_layers(model_type, want):
    from peft import LoraConfig, get_peft_model

    model = build_tiny_model(model_type, num_layers=4, hidden=32, **IDS)
    plan = build_plan(model, method="lora", layers="1,3", lora_r=4)
    estimate = count_parameters(model, plan)["trainable_params"]
    kwargs = lora_targets(model, plan)
    assert kwargs["layers_to_transform"] == [1, 3]
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, **kwargs))
    apply_plan(peft_model, plan)
    summary = count_parameters(peft_model, plan)
    adapted = {
        n.split(".lora_")[0].replace("base_model.model.", "").replace(".base_layer", "")
        for n, p in peft_model.named_parameters()
        if p.requires_grad
    }
    assert adapted == {w.format(i=i) for w in want for i in (1, 3)}
    assert summary["trainable_params"] == estimate  # the plan's LoRA count matches PEFT's


def test_lora_with_extras_trains_them_beside_the_adapters():
    from peft import LoraConfig, get_peft_model

    model = build_tiny_model("llama", num_layers=3, hidden=32, **IDS)
    plan = build_plan(model, method="lora", layers="1", extras="embeddings,norm")
    estimate = count_parameters(model, plan)
    peft_model = get_peft_model(model, LoraConfig(r=8, **lora_targets(model, plan)))
    apply_plan(peft_model, plan)
    summary = count_parameters(peft_model, plan)
    names = {n.replace("base_model.model.", "") for n, p in peft_model.named_parameters() if p.requires_grad}
    assert names == {
        "model.embed_tokens.modules_to_save.default.weight",
        "model.norm.modules_to_save.default.weight",
    } | {f"model.layers.1.mlp.{m}_proj.lora_{ab}.default.weight" for m in ("up", "down") for ab in "AB"}
    assert summary["trainable_params"] == estimate["trainable_params"]
    assert summary["total_params"] == estimate["total_params"]


def test_lora_plan_without_adapters_fails():
    model = build_tiny_model("llama", num_layers=2, hidden=32, **IDS)
    with pytest.raises(SlamError, match="get_peft_model"):
        apply_plan(model, build_plan(model, method="lora", layers="0"))


def test_lora_options_reach_the_adapters():
    """--lora-r / --lora-alpha / --lora-dropout end up in PEFT's config and adapters."""
    from peft import get_peft_model

    model = build_tiny_model("llama", num_layers=2, hidden=32, **IDS)
    spec = PlanSpec(method="lora", layers="0", lora_r=4, lora_alpha=32, lora_dropout=0.3)
    plan = build_plan(model, spec)
    config = lora_config(model, plan)
    assert (config.r, config.lora_alpha, config.lora_dropout) == (4, 32, 0.3)
    peft_model = get_peft_model(model, config)
    a = dict(peft_model.named_parameters())[
        "base_model.model.model.layers.0.mlp.up_proj.lora_A.default.weight"
    ]
    assert a.shape[0] == 4
    layer = peft_model.base_model.model.model.layers[0].mlp.up_proj
    assert layer.scaling["default"] == 32 / 4 and layer.lora_dropout["default"].p == 0.3


def test_plan_spec_checks_modules_and_extras_when_built():
    assert PlanSpec(modules="ffn_all", extras=["lm_head"]).extras == ["lm-head"]
    with pytest.raises(SlamError, match="modules: unknown value 'mlp'"):
        PlanSpec(modules=["mlp"])


def test_handle_removes_its_hooks():
    model = build_tiny_model("phi3", num_layers=2, hidden=32, **IDS)
    frozen = apply_plan(model, build_plan(model, layers="1"))
    assert len(frozen.hooks) == 1 and frozen.copies
    assert not hasattr(model, "_slam_hooks")  # nothing stuck on the model
    frozen.remove()
    assert frozen.hooks == []
