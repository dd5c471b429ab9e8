"""`slam train` / `slam merge` end to end on tiny random models with a real BPE tokenizer.

Real subprocess runs of the CLI where the contract is the command line (training,
resume after kill -9, merge, bad data; the engines: test_engines.py); in-process ``train(TrainOptions(...))``
elsewhere to keep the file fast on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from model_files import model_tensors as _tensors
from safetensors.torch import load_file

from slam_align.errors import SlamError
from slam_align.train.train import TrainOptions, train

pytestmark = pytest.mark.slow  # every test here trains or runs slam as a subprocess

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "train-samples"


def _changed(base: dict, new: dict) -> set[str]:
    assert set(base) == set(new)
    return {k for k in base if not torch.equal(base[k], new[k])}


def _ffn(layers, parts=("up_proj", "down_proj")) -> set[str]:
    return {f"model.layers.{i}.mlp.{p}.weight" for i in layers for p in parts}


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    """Alpaca JSONL from the real QAlign samples when present (kind alignment / response)."""
    rows = []
    de = SHARED / "qalign_gsmtrans_question" / "de-en.first200.jsonl"
    en = SHARED / "qalign_gsm8kinstruct_en" / "train.first300.jsonl"
    if de.is_file() and en.is_file():
        for line in de.read_text(encoding="utf-8").splitlines()[:24]:
            r = json.loads(line)
            rows.append(
                {
                    "instruction": "Translate the following sentences from German to English. " + r["source"],
                    "output": r["target"],
                    "kind": "alignment",
                    "lang": "de",
                }
            )
        for line in en.read_text(encoding="utf-8").splitlines()[:24]:
            r = json.loads(line)
            rows.append(
                {"instruction": r["question"], "output": r["answer"], "kind": "response", "lang": "en"}
            )
    else:  # a user's checkout without ../shared: small fixed data
        for i in range(24):
            rows.append(
                {"instruction": f"Übersetze: {i} Äpfel", "output": f"{i} apples", "kind": "alignment"}
            )
            rows.append(
                {"instruction": f"What is {i} + 2?", "output": f"{i} + 2 = {i + 2}. The answer is {i + 2}."}
            )
            rows[-1]["kind"] = "response"
    path = tmp_path_factory.mktemp("data") / "mix.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _args(model: Path, data: Path, out: Path, *extra) -> list[str]:
    return [
        "train",
        "--model",
        str(model),
        "--data",
        str(data),
        "--output",
        str(out),
        "--learning-rate",
        "1e-2",
        "--per-device-train-batch-size",
        "4",
        "--seed",
        "3",
        "--cutoff-len",
        "320",
        "--no-progress",
        *extra,
    ]


@pytest.fixture(scope="module")
def slam_run(tmp_path_factory, tiny_model_factory, mix):
    from conftest import run_cli

    base = tiny_model_factory("llama")
    out = tmp_path_factory.mktemp("runs") / "slam"
    proc = run_cli(*_args(base, mix, out, "--method", "slam", "--layers", "0-1", "--max-steps", "3"))
    return base, out, proc


def test_slam_trains_only_selected_tensors(slam_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, out, proc = slam_run
    assert "trained slam" in proc.stdout
    final = out / "final"
    assert _changed(_tensors(base), _tensors(final)) == _ffn([0, 1])
    model = AutoModelForCausalLM.from_pretrained(str(final))
    assert model.dtype == torch.float32
    assert AutoTokenizer.from_pretrained(str(final)).eos_token == "</s>"
    for name in ("config.yaml", "metrics.json", "timing.json", "README.md", "loss.png"):
        assert (out / name).is_file(), name
    timing = json.loads((out / "timing.json").read_text())
    assert timing["complete"] and timing["steps"] == 3 and timing["stages"]["train"]["steps"] == 3
    n = sum(load_file(str(final / "slam_delta.safetensors"))[k].numel() for k in _ffn([0, 1]))
    assert timing["trainable_params"] == n
    # AdamW holds two fp32 tensors per trainable element (+ a step counter per tensor): frozen ones hold none.
    assert 8 * n <= timing["optimizer_state_bytes"] <= 8 * n + 64 * 4
    assert timing["tokens_seen"] > 0 and timing["tokens_per_second"] > 0 and timing["peak_memory_bytes"] > 0
    assert len(json.loads((out / "metrics.json").read_text())["loss_curve"]["train"]) == 3
    assert json.loads((out / "run.json").read_text())["prompt"] == "alpaca@1"
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    record = json.loads((final / "slam_train.json").read_text())
    assert record["method"] == "slam" and record["layers"] == [0, 1] and record["trainable_params"] == n
    assert record["train_seconds"] == timing["total_wall_seconds"] and record["run_dir"] == str(out.resolve())
    # config.yaml holds exactly the options: it reruns as a config file
    from slam_align.config import resolve_options

    again = resolve_options(TrainOptions, str(out / "config.yaml"), {"output": str(out / "again")})
    assert again.layers == "0-1" and again.output == str(out / "again")


def test_delta_merge_round_trips_bit_exactly(slam_run, tmp_path, cli, tiny_model_factory):
    base, out, _ = slam_run
    delta = load_file(str(out / "final" / "slam_delta.safetensors"))
    assert set(delta) == _ffn([0, 1])
    manifest = json.loads((out / "final" / "slam_delta.json").read_text())
    assert manifest["base_model"] == str(base.resolve()) and len(manifest["base_config_sha256"]) == 64
    merged = tmp_path / "merged"
    cli("merge", "--base", base, "--delta", out / "final" / "slam_delta.safetensors", "--output", merged)
    final, rebuilt = _tensors(out / "final"), _tensors(merged)
    assert set(final) == set(rebuilt) and all(torch.equal(final[k], rebuilt[k]) for k in final)
    # A base with another architecture is refused (config hash), in one line.
    other = tiny_model_factory("llama", num_layers=3)
    proc = cli("merge", "--base", other, "--delta", out / "final", "--output", tmp_path / "x", check=False)
    assert (
        proc.returncode == 2
        and "config hash differs" in proc.stderr
        and len(proc.stderr.strip().splitlines()) == 1
    )
    # --no-check-config merges anyway (layers 0-1 exist in the 3-layer base, same shapes).
    cli("merge", "--base", other, "--delta", out / "final", "--output", tmp_path / "y", "--no-check-config")
    forced = _tensors(tmp_path / "y")
    assert all(torch.equal(forced[k], final[k]) for k in _ffn([0, 1]))


def test_existing_output_is_never_overwritten(slam_run, mix):
    base, out, _ = slam_run
    before = (out / "final" / "model.safetensors").stat().st_mtime_ns
    with pytest.raises(SlamError, match="--resume"):
        train(TrainOptions(model=str(base), data=[str(mix)], output=str(out), max_steps=1))
    assert (out / "final" / "model.safetensors").stat().st_mtime_ns == before


def test_resume_after_kill_gives_the_same_weights(tmp_path, tiny_model_factory, mix, cli):
    base = tiny_model_factory("llama")
    common = ("--method", "slam", "--layers", "0,2", "--max-steps", "16", "--save-steps", "2")
    cli(*_args(base, mix, tmp_path / "straight", *common))

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "slam_align", *_args(base, mix, out, *common)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.time() + 300
    # slam_elapsed.json is written just after the checkpoint: kill once it is there.
    while not (out / "checkpoint-4" / "slam_elapsed.json").is_file():
        assert proc.poll() is None, "training ended before the test could kill it"
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (out / "final").exists()

    res = cli(*_args(base, mix, out, *common, "--resume"))
    assert "resuming train from" in res.stderr
    a, b = _tensors(tmp_path / "straight" / "final"), _tensors(out / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _changed(_tensors(base), b) == _ffn([0, 2])
    stage = json.loads((out / "timing.json").read_text())["stages"]["train"]
    assert re.search(r"checkpoint-\d+$", stage["resumed_from"])
    # The time before the kill counts too, not only the resumed part.
    before = json.loads((Path(stage["resumed_from"]) / "slam_elapsed.json").read_text())["wall_seconds"]
    assert stage["wall_seconds"] > before > 0


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n', r"line 2.*output"),
        ("", r"empty|no training examples"),
        ('{"instruction": "a", "output": "b"}\nnot json\n', r"line 2.*JSON"),
    ],
    ids=["missing-field", "empty-file", "non-json-line"],
)
def test_bad_data_fails_before_training(tmp_path, tiny_llama_dir, content, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content, encoding="utf-8")
    out = tmp_path / "run"
    with pytest.raises(SlamError, match=message) as err:
        train(TrainOptions(model=str(tiny_llama_dir), data=[str(bad)], output=str(out), max_steps=1))
    assert "bad.jsonl" in str(err.value)
    assert not out.exists()  # nothing started: no run directory, no model loaded


def test_bad_data_cli_one_line(tmp_path, tiny_llama_dir, cli):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"instruction": "a", "output": "b"}\n{"instruction": 1, "output": "b"}\n', encoding="utf-8"
    )
    proc = cli(*_args(tiny_llama_dir, bad, tmp_path / "run", "--max-steps", "1"), check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "bad.jsonl" in proc.stderr and "line 2" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _opts(base, data, out, **kw) -> TrainOptions:
    defaults = dict(learning_rate=1e-2, per_device_train_batch_size=4, seed=3, cutoff_len=320, progress=False)
    return TrainOptions(model=str(base), data=[str(data)], output=str(out), **{**defaults, **kw})


def test_two_stage_times_each_stage(tmp_path, tiny_llama_dir, mix):
    result = train(_opts(tiny_llama_dir, mix, tmp_path / "qalign", method="two-stage", max_steps=2))
    out = Path(result["output_dir"])
    timing = json.loads((out / "timing.json").read_text())
    assert list(timing["stages"]) == ["stage1", "stage2"]
    assert all(s["steps"] == 2 and s["wall_seconds"] > 0 for s in timing["stages"].values())
    assert timing["trainable_fraction"] == 1.0
    base, s1, final = _tensors(tiny_llama_dir), _tensors(out / "stage1" / "final"), _tensors(out / "final")
    assert _changed(base, s1) and _changed(s1, final)  # stage 2 continued from stage 1
    assert not (out / "final" / "slam_delta.safetensors").exists()  # full fine-tuning: no delta
    assert set(json.loads((out / "metrics.json").read_text())["loss_curve"]) == {"stage1", "stage2"}


def test_two_stage_with_explicit_files_and_weights(tmp_path, tiny_llama_dir, mix):
    rows = [json.loads(x) for x in mix.read_text(encoding="utf-8").splitlines()]
    a, b = tmp_path / "align.jsonl", tmp_path / "resp.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in rows if r["kind"] == "alignment"))
    b.write_text("".join(json.dumps(r) + "\n" for r in rows if r["kind"] != "alignment"))
    opts = _opts(tiny_llama_dir, a, tmp_path / "o", method="two-stage", max_steps=1)
    opts.data, opts.stage1_data, opts.stage2_data = [], [f"{a}:0.5", f"{b}:0.5"], [str(b)]
    timing = train(opts)["timing"]
    stage1 = timing["stages"]["stage1"]
    assert stage1["examples"] + stage1["dropped_examples"] == len(
        rows
    )  # weighted mixture as large as both files


def test_lora_saves_adapter_and_merged_model(tmp_path, tiny_llama_dir, mix):
    result = train(_opts(tiny_llama_dir, mix, tmp_path / "lora", method="lora", layers="1", max_steps=2))
    out = Path(result["output_dir"])
    assert (out / "adapter" / "adapter_config.json").is_file()
    # LoRA r=8 on layer 1's up (64->128) and down (128->64): 2 x 8 x (64 + 128) adapter parameters
    assert result["trainable_params"] == 2 * 8 * (64 + 128)
    changed = _changed(_tensors(tiny_llama_dir), _tensors(out / "final"))
    assert changed and changed <= _ffn([1])  # the merged adapters touch only layer 1's up/down


@pytest.mark.parametrize("method, expect", [("attention", "attn"), ("random", "mlp")])
def test_ablations_train_their_plan(tmp_path, tiny_llama_dir, mix, method, expect):
    result = train(
        _opts(
            tiny_llama_dir,
            mix,
            tmp_path / method,
            method=method,
            layers="2",
            num_random_layers=1,
            max_steps=1,
        )
    )
    changed = _changed(_tensors(tiny_llama_dir), _tensors(Path(result["final_dir"])))
    assert changed and all(expect in k for k in changed)
    assert len({re.search(r"layers\.(\d+)", k).group(1) for k in changed}) == 1
    assert set(load_file(str(Path(result["final_dir"]) / "slam_delta.safetensors"))) == changed


def test_layers_auto_from_identify_output(tmp_path, tiny_llama_dir, mix, cli):
    from slam_align.models.layers import write_layers_file

    sel = tmp_path / "identify"
    write_layers_file(sel / "layers.json", {"selected": [3], "scores": [0.1, 0.2, 0.3, 0.9], "num_layers": 4})
    result = train(
        _opts(tiny_llama_dir, mix, tmp_path / "auto", layers=f"auto:{sel}/layers.json", max_steps=1)
    )
    assert _changed(_tensors(tiny_llama_dir), _tensors(Path(result["final_dir"]))) == _ffn([3])
    # The directory slam identify wrote works as well, through the command line too.
    cli("train", "--model", tiny_llama_dir, "--data", mix, "--output", tmp_path / "dir", "--layers",
        f"auto:{sel}", "--max-steps", "1", "--no-progress")  # fmt: skip
    assert json.loads((tmp_path / "dir" / "timing.json").read_text())["plan"]["layers"] == [3]
    with pytest.raises(SlamError, match="layers file not found"):
        train(
            _opts(
                tiny_llama_dir, mix, tmp_path / "auto2", layers="auto:/nonexistent/layers.json", max_steps=1
            )
        )
    untagged = tmp_path / "untagged.json"
    untagged.write_text(json.dumps({"selected": [3], "num_layers": 4}))
    bad = cli("train", "--model", tiny_llama_dir, "--data", mix, "--output", tmp_path / "x", "--layers",
              f"auto:{untagged}", "--max-steps", "1", check=False)  # fmt: skip
    assert bad.returncode == 2 and not (tmp_path / "x").exists()
    assert bad.stderr.strip().splitlines() == [
        f"error: {untagged}: not a layers file of slam identify (field 'format' is None, "
        "expected 'slam-identify/1')"
    ]


def test_fused_gate_up_keeps_the_gate_half_bit_exact(tmp_path, tiny_model_factory, mix):
    """Phi-3's fused [gate; up]: under ffn only the up half trains, even with weight decay."""
    base = tiny_model_factory("phi3")
    result = train(_opts(base, mix, tmp_path / "phi3", layers="0", max_steps=2, weight_decay=0.1))
    before, after = _tensors(base), _tensors(Path(result["final_dir"]))
    changed = _changed(before, after)
    assert changed == {"model.layers.0.mlp.gate_up_proj.weight", "model.layers.0.mlp.down_proj.weight"}
    w0, w1 = before["model.layers.0.mlp.gate_up_proj.weight"], after["model.layers.0.mlp.gate_up_proj.weight"]
    half = w0.shape[0] // 2
    assert torch.equal(w0[:half], w1[:half]) and not torch.equal(w0[half:], w1[half:])


def test_resume_refuses_changed_options(tmp_path, tiny_llama_dir, mix):
    out = tmp_path / "r"
    train(_opts(tiny_llama_dir, mix, out, layers="0", max_steps=1))
    again = train(_opts(tiny_llama_dir, mix, out, layers="0", max_steps=1, resume=True))
    assert again["timing"]["complete"]  # already complete: returns its summary, trains nothing
    with pytest.raises(SlamError, match="max_steps"):
        train(_opts(tiny_llama_dir, mix, out, layers="0", max_steps=5, resume=True))


def test_rebuild_from_base_restores_frozen_tensors(tmp_path, tiny_llama_dir, mix):
    """What a DeepSpeed bf16 run needs: final/ rebuilt as base + delta, frozen tensors exact."""
    from safetensors.torch import save_file

    from slam_align.train.delta import rebuild_from_base

    final = Path(train(_opts(tiny_llama_dir, mix, tmp_path / "ds", layers="1", max_steps=1))["final_dir"])
    trained = _tensors(final)
    rounded = {k: v.to(torch.bfloat16).to(v.dtype) for k, v in trained.items()}  # as bf16 engines save
    save_file(rounded, str(final / "model.safetensors"), metadata={"format": "pt"})
    rebuild_from_base(final, str(tiny_llama_dir))
    rebuilt = _tensors(final)
    assert all(torch.equal(rebuilt[k], trained[k]) for k in trained)
    assert (final / "slam_delta.safetensors").is_file() and not (tmp_path / "ds" / ".final.old").exists()


def test_gradient_checkpointing_with_frozen_embeddings_still_trains(tmp_path, tiny_llama_dir, mix):
    """The pitfall: checkpointed layers behind frozen embeddings must still get gradients."""
    plain = train(_opts(tiny_llama_dir, mix, tmp_path / "plain", layers="0,2", max_steps=2))
    ckpt = train(
        _opts(tiny_llama_dir, mix, tmp_path / "ckpt", layers="0,2", max_steps=2, gradient_checkpointing=True)
    )
    a, b = _tensors(Path(plain["final_dir"])), _tensors(Path(ckpt["final_dir"]))
    assert _changed(_tensors(tiny_llama_dir), b) == _ffn([0, 2])
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)  # same training, recomputed activations
