"""``slam compare``: two real eval runs (one of a 'trained' model directory) in one table and chart."""

from __future__ import annotations

import csv
import json
import shutil

import pytest

from slam_align.evaluate.eval import EvalOptions, evaluate

pytestmark = pytest.mark.slow  # every test here trains or runs slam as a subprocess


def test_compare_two_runs(tiny_llama_dir, shared_data, tmp_path, cli):
    # A trained model: the model in DIR/final with the record slam train leaves beside it.
    train_dir = tmp_path / "train-slam"
    shutil.copytree(tiny_llama_dir, train_dir / "final")
    (train_dir / "final" / "slam_train.json").write_text(
        json.dumps({"format": "slam-train/1", "run_dir": str(train_dir), "method": "slam",
                    "trainable_params": 800, "total_params": 10000, "trainable_fraction": 0.08,
                    "train_seconds": 123.0})
    )  # fmt: skip
    common = dict(benchmark=["mgsm"], langs=["de", "en"], data_dir=str(shared_data), limit=2,
                  max_new_tokens=4, progress=False, bootstrap=100)  # fmt: skip
    base = tmp_path / "eval-base"
    slam = tmp_path / "eval-slam"
    evaluate(EvalOptions(model=str(tiny_llama_dir), output=str(base), **common))
    evaluate(EvalOptions(model=str(train_dir / "final"), output=str(slam), **common))

    out = tmp_path / "cmp"
    proc = cli("compare", base, slam, "--output", out)
    assert "| eval-base |" in proc.stdout and "| eval-slam |" in proc.stdout
    for name in (
        "comparison.md",
        "comparison.csv",
        "comparison.png",
        "README.md",
        "config.yaml",
        "metrics.json",
    ):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader((out / "comparison.csv").read_text().splitlines()))
    assert [r["run"] for r in rows] == ["eval-base", "eval-slam"]
    assert list(rows[0])[:5] == ["run", "de", "en", "average", "average_non_en"]
    assert rows[0]["trainable_fraction"] == "" and rows[0]["train_seconds"] == ""
    assert float(rows[1]["trainable_fraction"]) == 0.08 and float(rows[1]["train_seconds"]) == 123.0
    base_metrics = json.loads((base / "metrics.json").read_text())
    assert float(rows[0]["de"]) == base_metrics["accuracy"]["de"]
    table = (out / "comparison.md").read_text()
    assert "8.00" in table and "123 s" in table and "trainable %" in table
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"
    # the same comparison again into the same directory is fine (it holds a comparison)
    cli("compare", base, slam, "--output", out, "--names", "base,slam")
    assert [r["run"] for r in csv.DictReader((out / "comparison.csv").read_text().splitlines())] == [
        "base",
        "slam",
    ]


def test_compare_reads_demo_results_and_reports_errors(tmp_path, cli):
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "results.json").write_text(
        json.dumps({"methods": {
            "base": {"accuracy": {"en": 0.9, "syn-de": 0.2}, "trainable_fraction": 0.0, "train_seconds": 0},
            "slam": {"accuracy": {"en": 0.88, "syn-de": 0.6}, "trainable_fraction": 0.12, "train_seconds": 30.5},
        }})
    )  # fmt: skip
    result = json.loads(
        cli("compare", demo, "--output", tmp_path / "c").stdout
        and (tmp_path / "c" / "metrics.json").read_text()
    )
    names = [r["name"] for r in result["runs"]]
    assert names == ["base", "slam"]
    slam = result["runs"][1]
    assert slam["average"] == 0.74 and slam["average_non_en"] == 0.6 and slam["trainable_fraction"] == 0.12
    proc = cli("compare", tmp_path / "nothing-here", check=False)
    assert proc.returncode == 2 and "nothing-here" in proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = cli("compare", empty, check=False)
    assert proc.returncode == 2 and "metrics.json" in proc.stderr
