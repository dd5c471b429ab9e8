"""benchmarks/gpu_train.py: the CPU dry run of the GPU proof, as a real subprocess.

The GPU figures themselves need a device session (docs/gpu.md); here the same script runs
a tiny Llama through the same code path (both methods in their own child processes), and
the Llama-2 shapes it would build on the GPU are checked against the published counts.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_train.py"


def _script_module():
    spec = importlib.util.spec_from_file_location("gpu_train", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_dry_run_measures_both_methods(tmp_path):
    out = tmp_path / "gpu.json"
    seq, batch, steps, warmup = 48, 2, 2, 1
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--config",
            "tiny",
            "--steps",
            str(steps),
            "--warmup-steps",
            str(warmup),
        ]
        + ["--seq-len", str(seq), "--micro-batch-size", str(batch), "--device", "cpu", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is exactly one JSON object
    assert json.loads(out.read_text()) == report
    assert report["config"] == "tiny" and report["device"]["type"] == "cpu"
    assert report["versions"]["transformers_runtime"] and report["versions"]["torch_runtime"]
    slam, full = report["methods"]["slam"], report["methods"]["full"]
    for r in (slam, full):
        assert r["status"] == "ok", r.get("traceback") or r
        assert len(r["step_seconds"]) == steps and all(t > 0 for t in r["step_seconds"])
        assert r["tokens_per_step"] == seq * batch
        # Every step had the full sequence length: the Trainer counted all of it.
        assert r["tokens_seen"] == (steps + warmup) * seq * batch
        assert r["tokens_per_second"] == pytest.approx(seq * batch * steps / sum(r["step_seconds"]))
        assert r["losses"] and r["losses_finite"]
        assert r["gradient_checkpointing_active"]  # the Trainer turned it on, as slam train does
        assert r["peak_memory_kind"] == "cpu_max_rss" and r["peak_memory_bytes"] > 0
        # The measured freeze is the plan that `slam plan` accounts for.
        assert r["trainable_params"] == r["estimate"]["trainable_params"]
        assert r["total_params"] == r["estimate"]["total_params"]
        est = r["estimate"]["memory"]
        assert est["total_bytes"] > 0 and est["seq_len"] == seq and est["micro_batch_size"] == batch
        cmp_ = r["memory_vs_estimate"]
        assert cmp_["difference_bytes"] == r["peak_memory_bytes"] - est["total_bytes"]
        assert cmp_["ratio"] == pytest.approx(r["peak_memory_bytes"] / est["total_bytes"], rel=1e-3)
        # bf16 weights: the Trainer's AdamW keeps m and v in bf16 (2 x 2 B per trainable
        # element, plus a 4-byte step per tensor), as `slam plan --precision bf16-pure` counts.
        assert 4 * r["trainable_params"] <= r["optimizer_state_bytes"] < 4 * r["trainable_params"] + 4096
        assert r["weights_bytes_measured"] == est["weights_bytes"]
        if est["precision"] == "bf16-pure":
            parts = cmp_["parts"]["optimizer_states"]
            assert 0 <= parts["measured"] - parts["estimated"] < 4096
            # ...and what the default --precision bf16 (fp32 states + master copy) would say.
            assert r["estimate_precision_bf16"]["optimizer_states_bytes"] == 12 * r["trainable_params"]
    assert slam["trainable_params"] < full["trainable_params"] == full["total_params"]
    assert 0 < slam["trainable_fraction"] < 1
    assert report["summary"]["slam"] == "ok" and report["summary"]["full"] == "ok"
    assert math.isfinite(report["summary"]["full_over_slam_peak_memory"])


@pytest.mark.parametrize(
    "config, total, slam_trainable",
    [("llama2-7b", 6_738_415_616, 541_065_216), ("llama2-13b", 13_015_864_320, 849_346_560)],
)
def test_llama2_shapes_match_the_published_counts(tmp_path, config, total, slam_trainable):
    gpu_train = _script_module()
    args = gpu_train.parse_args(["--config", config, "--seq-len", "1024", "--micro-batch-size", "1"])
    gpu_train.model_config(config).save_pretrained(str(tmp_path))
    slam = gpu_train.plan_estimate(tmp_path / "config.json", args, "slam", 80.0, "bf16")
    assert (slam["total_params"], slam["trainable_params"]) == (total, slam_trainable)
    # Mixed precision (fp32 AdamW states + master copy): SLAM fits one 80 GiB GPU, full does not.
    assert slam["memory"]["fits"]
    full = gpu_train.plan_estimate(tmp_path / "config.json", args, "full", 80.0, "bf16")
    assert full["trainable_params"] == total and not full["memory"]["fits"]
    assert gpu_train.estimate_precision("float32") == "fp32"
    assert gpu_train.estimate_precision("bfloat16") == "bf16-pure"


@pytest.mark.slow
def test_bad_methods_fail_with_one_line():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--methods", "slam,bogus"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert "--methods: unknown ['bogus']" in proc.stderr.strip().splitlines()[-1]
