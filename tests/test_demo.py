"""``slam demo --quick`` end to end, as a real subprocess: contract, targets, cache, bad input.

This is the project's slowest test (about 7 minutes of CPU time on one core: it pretrains
the base model from scratch in a temporary cache, then runs identify, train and eval for
real on 200 problems per language).
"""

from __future__ import annotations

import json
import time

import pytest

from slam_align.synth.world import ALL_LANGS

# The quick run takes about 8 minutes of CPU time; a loaded machine needs more than the default 900 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2700)]

METHODS = ("base", "slam", "full", "two-stage")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    from conftest import run_cli

    root = tmp_path_factory.mktemp("demo")
    out, cache = root / "out", root / "cache"
    t0 = time.perf_counter()
    # slam-lower is left out (the contract covers it through slam's own path) to keep the suite short.
    proc = run_cli(
        "demo",
        "--quick",
        "--methods",
        "slam,full,two-stage",
        "--output",
        out,
        "--cache-dir",
        cache,
        "--no-progress",
        timeout=2400,
    )
    seconds = time.perf_counter() - t0
    return out, cache, proc, seconds


def test_quick_demo_writes_the_contract(quick_run):
    out, _, proc, seconds = quick_run
    print(f"slam demo --quick took {seconds:.0f} s")
    for name in ("results.json", "README.md", "config.yaml", "metrics.json", "timing.json"):
        assert (out / name).is_file(), name
    for name in ("accuracy.png", "layer_scores.png", "similarity.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    results = json.loads((out / "results.json").read_text())
    assert set(METHODS) <= set(results["methods"])
    for name in METHODS:
        entry = results["methods"][name]
        assert set(entry["accuracy"]) == set(ALL_LANGS)
        assert all(0.0 <= v <= 1.0 for v in entry["accuracy"].values())
        assert 0.0 <= entry["trainable_fraction"] <= 1.0
        assert entry["train_seconds"] >= 0.0
    assert results["methods"]["full"]["trainable_fraction"] == 1.0
    assert results["methods"]["base"]["train_seconds"] == 0.0
    assert results["seed"] == 0 and results["world"]["seed"] == 0
    n = results["num_layers"]
    assert results["identified_layers"] and all(0 <= i < n for i in results["identified_layers"])
    # SLAM trained exactly the identified layers, through slam train's own run directory.
    slam_timing = json.loads((out / "runs" / "slam" / "timing.json").read_text())
    assert sorted(slam_timing["plan"]["layers"]) == sorted(results["identified_layers"])
    # The numbers in results.json are slam eval's own metrics (nothing recomputed or typed in).
    for name in METHODS:
        metrics = json.loads((out / "eval" / name / "metrics.json").read_text())
        assert metrics["accuracy"] == pytest.approx(results["methods"][name]["accuracy"])
    # New keys: 95% intervals of every average, the per-layer similarity curves, the claims.
    for name in METHODS:
        ci = results["intervals"][name]
        e = results["methods"][name]
        assert ci["average_non_en"][0] <= e["average_non_en"] <= ci["average_non_en"][1]
        curve = results["similarity"][name]["mean_non_en"]
        assert len(curve) == n and all(-1.0 <= v <= 1.0 for v in curve)
        assert set(results["similarity"][name]["per_lang"]) == set(ALL_LANGS) - {"en"}
    base_sim = json.loads((out / "identify" / "similarity.json").read_text())
    assert base_sim == results["similarity"]["base"]
    assert results["world"]["test"] >= 200 and n >= 4 * len(results["identified_layers"])
    claims = {c["claim"]: c for c in results["claims"]}
    gain = next(c for name, c in claims.items() if name.startswith("SLAM raises"))
    slam_gain = results["methods"]["slam"]["average_non_en"] - results["methods"]["base"]["average_non_en"]
    assert gain["value"] == pytest.approx(slam_gain)
    assert gain["interval"][0] <= gain["value"] <= gain["interval"][1]
    assert gain["verdict"] == {True: "holds", False: "does not hold", None: "within noise"}[gain["holds"]]
    readme = (out / "README.md").read_text()
    assert "| slam |" in readme and "## Targets" in readme and "claims" in readme
    assert "issue" not in readme.lower()
    assert "wrote" in proc.stdout


def test_quick_demo_base_model_meets_the_calibration_targets(quick_run):
    """The base model alone has the shape of a real English-centred model (docs/demo.md)."""
    from slam_align.synth.world import HIGH_RESOURCE, LOW_RESOURCE

    out = quick_run[0]
    results = json.loads((out / "results.json").read_text())
    acc = results["methods"]["base"]["accuracy"]
    high = sum(acc[x] for x in HIGH_RESOURCE) / len(HIGH_RESOURCE)
    low = sum(acc[x] for x in LOW_RESOURCE) / len(LOW_RESOURCE)
    assert acc["en"] >= 0.8
    assert high >= 0.5 * acc["en"]
    assert low <= 0.25
    assert high - low >= 0.25
    # The report's own target table says the same, and concerns nothing but the base model.
    assert [t["held"] for t in results["targets"]] == [True] * 4
    assert all(t["name"].startswith("base ") for t in results["targets"])


def test_second_run_starts_from_the_cached_base(quick_run, tmp_path):
    from conftest import run_cli

    out, cache, _, _ = quick_run
    first = json.loads((out / "results.json").read_text())
    proc = run_cli(
        "demo",
        "--quick",
        "--methods",
        "slam",
        "--output",
        tmp_path / "again",
        "--cache-dir",
        cache,
        "--no-progress",
    )
    results = json.loads((tmp_path / "again" / "results.json").read_text())
    assert results["base_model"]["from_cache"] is True
    assert results["timing"]["pretrain_seconds"] == 0.0
    assert results["methods"]["base"]["accuracy"] == first["methods"]["base"]["accuracy"]
    assert "wrote" in proc.stdout


def test_existing_output_is_never_overwritten_silently(quick_run, tmp_path):
    from conftest import run_cli

    out = quick_run[0]
    before = (out / "results.json").read_bytes()
    proc = run_cli("demo", "--quick", "--output", out, "--cache-dir", tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error:") and "--overwrite" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert (out / "results.json").read_bytes() == before


def test_bad_method_is_one_line_error(tmp_path):
    from conftest import run_cli

    proc = run_cli("demo", "--quick", "--methods", "slam,magic", "--output", tmp_path / "x", check=False)
    assert proc.returncode == 2
    assert "magic" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    proc = run_cli("demo", "--quick", "--seeds", "0,-1", "--output", tmp_path / "y", check=False)
    assert proc.returncode == 2 and "--seeds" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "y").exists()


def test_seeds_top_k_and_threads_reach_the_runs(tmp_path, monkeypatch):
    """``--seeds`` runs the whole experiment once per seed (own world, base model, training) and
    reports each method's mean and spread over them; ``--top-k`` and ``--threads`` reach every
    run. On a world far smaller than --quick's (about 30 s), so the arithmetic and the layout are
    checked for real without minutes of training."""
    import dataclasses
    import statistics

    from slam_align.synth import demo
    from slam_align.synth.pretrain import PretrainSettings
    from slam_align.synth.world import quick_settings

    def tiny(quick: bool, seed: int) -> demo.Preset:
        world = dataclasses.replace(
            quick_settings(seed),
            pretrain_en=300,
            pretrain_foreign=30,
            parallel_sentences=4,
            code_switched=30,
            align=6,
            reasoning=40,
            identify=6,
            test=10,
        )
        pretrain = PretrainSettings(hidden=32, layers=4, intermediate=64, steps=20, seed=seed)
        return demo.Preset("tiny", world, pretrain, epochs=1, two_stage_epochs=1)

    monkeypatch.setattr(demo, "preset", tiny)
    out = tmp_path / "out"
    options = demo.DemoOptions(
        output=str(out),
        quick=True,
        seeds=[0, 1],
        methods=["slam"],
        top_k=1,
        threads=2,
        cache_dir=str(tmp_path / "cache"),
        progress=False,
    )
    results = demo.run_demo(options)
    assert results["seeds"] == [0, 1]
    assert set(results["identified_layers_per_seed"]) == {"0", "1"}
    assert all(len(layers) == 1 for layers in results["identified_layers_per_seed"].values())
    per_seed_worlds = set()
    for seed in (0, 1):
        own = json.loads((out / f"seed-{seed}" / "results.json").read_text())
        assert (
            own["seed"] == seed
            and own["identified_layers"] == results["identified_layers_per_seed"][str(seed)]
        )
        assert json.loads((out / f"seed-{seed}" / "timing.json").read_text())["threads"] == 2
        per_seed_worlds.add(json.dumps(own["world"], sort_keys=True))
        for method in ("base", "slam"):
            value = own["methods"][method]["average_non_en"]
            assert results["across_seeds"][method]["average_non_en"]["per_seed"][str(seed)] == value
    assert len(per_seed_worlds) == 2  # each seed builds its own world
    for method in ("base", "slam"):
        stats = results["across_seeds"][method]["average_non_en"]
        values = list(stats["per_seed"].values())
        assert stats["mean"] == pytest.approx(statistics.mean(values))
        assert stats["std"] == pytest.approx(statistics.stdev(values))
    assert json.loads((out / "results.json").read_text())["across_seeds"] == results["across_seeds"]
