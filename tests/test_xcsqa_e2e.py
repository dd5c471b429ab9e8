"""X-CSQA end to end, as a user runs it: ``slam identify``, ``slam data build``, ``slam train``,
``slam eval`` (with resume), ``slam score`` and ``slam compare`` as real subprocesses, on a tiny
model and X-CSQA / CommonsenseQA / FLORES-200 files in their real formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import xcsqa_data as X
import yaml

from slam_align.evaluate.choice import answer_is_correct, extract_choice

pytestmark = pytest.mark.slow  # trains and runs slam as subprocesses

LANGS = "en,de,ja,zh"  # ja: X-CSQA's folder is jap


@pytest.fixture(scope="module")
def letters_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    """The tiny Llama with an LM head that can only write A-E, '.', a space or EOS: a random model
    almost never names a choice; this one writes letters ("D.D.D.D." here), so the extraction
    and accuracy checks below have something to find (and can fail)."""
    from model_files import restricted_head_copy

    tokens = ["A", "B", "C", "D", "E", ".", "Ġ"]
    return restricted_head_copy(tiny_llama_dir, tmp_path_factory.mktemp("letters"), tokens, seed=1)


@pytest.fixture(scope="module")
def pipeline(letters_dir, tmp_path_factory):
    from conftest import run_cli

    root = tmp_path_factory.mktemp("xcsqa-e2e")
    xcsqa = X.write_distributed(root / "X-CSR_datasets")
    csqa = X.write_jsonl(root / "commonsense_qa-train.jsonl", X.csqa_hub_rows())
    flores = X.write_flores_distributed(root)
    d = {"root": root, "xcsqa": xcsqa, "procs": {}}
    common = ["--data-dir", xcsqa, "--no-progress"]

    d["procs"]["identify"] = run_cli(
        "identify", "--model", letters_dir, "--benchmark", "xcsqa", "--langs", LANGS, "--top-k", "2",
        "--batch-size", "4", "--output", root / "ident", *common,
    )  # fmt: skip
    config = {
        "name": "xcsqa-test", "langs": LANGS.split(","), "seed": 1, "decontaminate": ["xcsqa"],
        "test_data_dir": str(xcsqa),
        "sources": [
            {"name": "csqa-en", "type": "multiple-choice", "path": str(csqa), "benchmark": "xcsqa", "lang": "en"},
            {"name": "flores", "type": "flores", "path": str(flores), "langs": ["de", "ja", "zh"]},
        ],
    }  # fmt: skip
    (root / "mix.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    d["procs"]["build"] = run_cli("data", "build", root / "mix.yaml", "--output", root / "data")
    d["procs"]["train"] = run_cli(
        "train", "--model", letters_dir, "--data", root / "data", "--method", "slam",
        "--layers", f"auto:{root / 'ident'}", "--max-steps", "2", "--per-device-train-batch-size", "4",
        "--learning-rate", "1e-2", "--cutoff-len", "256", "--seed", "3", "--output", root / "train", "--no-progress",
    )  # fmt: skip
    evaluate = ["eval", "--benchmark", "xcsqa", "--langs", LANGS, "--max-new-tokens", "8", "--batch-size", "4",
                "--bootstrap", "200", *common]  # fmt: skip
    # the base model: first one question per language, then all (resume generates only the new ones)
    d["procs"]["eval-base-1"] = run_cli(
        *evaluate, "--model", letters_dir, "--limit", "1", "--output", root / "ev-base"
    )
    d["first"] = (root / "ev-base" / "predictions.jsonl").read_text(encoding="utf-8")
    d["procs"]["eval-base"] = run_cli(*evaluate, "--model", letters_dir, "--output", root / "ev-base")
    d["procs"]["eval-slam"] = run_cli(
        *evaluate, "--model", root / "train" / "final", "--output", root / "ev-slam"
    )
    d["procs"]["score"] = run_cli("score", "--predictions", root / "ev-base" / "predictions.jsonl", "--json")
    d["procs"]["compare"] = run_cli("compare", root / "ev-base", root / "ev-slam", "--output", root / "cmp")
    return d


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_identify_on_xcsqa_parallel_questions(pipeline):
    layers = json.loads((pipeline["root"] / "ident" / "layers.json").read_text())
    assert layers["benchmark"] == "xcsqa" and layers["langs"] == LANGS.split(",")
    assert layers["num_questions"] == {lang: 2 for lang in LANGS.split(",")}
    assert len(layers["selected"]) == 2 and all(0 <= i < 4 for i in layers["selected"])
    assert "selected layers:" in pipeline["procs"]["identify"].stdout


def test_data_build_and_train(pipeline):
    root = pipeline["root"]
    stats = json.loads((root / "data" / "stats.json").read_text())
    assert stats["rows_per_source"] == {"csqa-en": {"en": 3}, "flores": {"de": 2, "ja": 2, "zh": 2}}
    assert stats["removed_contaminated"]["per_test_set"] == {"xcsqa": 1}  # the validation question in CSQA
    train = _rows(root / "data" / "train.jsonl")
    assert {r["output"] for r in train if r["source"] == "csqa-en"} == {
        "The answer is (A).", "The answer is (B).", "The answer is (C).",
    }  # fmt: skip
    record = json.loads((root / "train" / "final" / "slam_train.json").read_text())
    layers = json.loads((root / "ident" / "layers.json").read_text())["selected"]
    assert record["method"] == "slam" and record["layers"] == layers


def test_eval_writes_choice_predictions_and_metrics(pipeline):
    root = pipeline["root"]
    for run in ("ev-base", "ev-slam"):
        rows = _rows(root / run / "predictions.jsonl")
        assert len(rows) == 8 and {r["answer_type"] for r in rows} == {"choice"}
        for r in rows:
            lang = r["lang"]
            assert (
                r["choices"] == dict(X.choices_of(lang, r["index"])) and r["answer"] == X.ANSWERS[r["index"]]
            )
            assert r["question"].startswith(X.QUESTIONS[lang][r["index"]][0] + "\nAnswer Choices: (A) ")
            assert r["extracted"] == extract_choice(r["prediction"], list(r["choices"].items()), lang)
            assert r["correct"] == (r["extracted"] == r["answer"])
            assert r["correct_last_number"] == answer_is_correct(r["prediction"], r["answer"])
        if run == "ev-base":  # the letters model names a choice ("D.D.D.D." here): right on 1 of 2 questions
            assert all(r["extracted"] is not None for r in rows)
            assert any(r["correct"] for r in rows) and not all(r["correct"] for r in rows)
        metrics = json.loads((root / run / "metrics.json").read_text())
        assert metrics["benchmark"] == "xcsqa" and metrics["answer_type"] == "choice"
        assert list(metrics["accuracy"]) == ["ja", "zh", "de", "en"]
        for lang in metrics["accuracy"]:
            right = [r["correct"] for r in rows if r["lang"] == lang]
            assert metrics["accuracy"][lang] == sum(right) / 2 and metrics["n"][lang] == 2
        non_en = [metrics["accuracy"][x] for x in ("ja", "zh", "de")]
        assert metrics["average_non_en"] == pytest.approx(sum(non_en) / 3)
        assert metrics["average"] == pytest.approx((sum(non_en) + metrics["accuracy"]["en"]) / 4)
        lo, hi = metrics["ci95"]["average"]
        assert lo <= metrics["average"] <= hi and set(metrics["ci95"]["accuracy"]) == set(metrics["accuracy"])
        assert metrics["scoring"]["accuracy"]["extractor"] == "slam-choice@1"
        assert metrics["scoring"]["accuracy_last_number"]["extractor"] == "answer-is@1"
        assert metrics["generation"]["max_new_tokens"] == {"xcsqa": 8}
        assert "| xcsqa (published) |" in (root / run / "results.md").read_text()
        assert (root / run / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    trained = json.loads((root / "ev-slam" / "metrics.json").read_text())["training"]
    assert trained["method"] == "slam"


def test_eval_resumes(pipeline):
    root = pipeline["root"]
    timing = json.loads((root / "ev-base" / "timing.json").read_text())
    assert timing["problems_resumed"] == 4 and timing["problems_generated"] == 4
    now = (root / "ev-base" / "predictions.jsonl").read_text(encoding="utf-8")
    assert now.startswith(pipeline["first"])  # the first four lines, as they were


def test_score_reproduces_the_metrics(pipeline):
    scored = json.loads(pipeline["procs"]["score"].stdout)
    metrics = json.loads((pipeline["root"] / "ev-base" / "metrics.json").read_text())
    for key in ("accuracy", "average", "average_non_en", "accuracy_last_number", "ci95", "answer_type"):
        assert scored[key] == metrics[key], key
    assert scored["rescored"] == {"rows": 8, "changed_vs_file": 0}


def test_compare_base_and_slam(pipeline):
    out = pipeline["root"] / "cmp"
    rows = list(csv.DictReader((out / "comparison.csv").read_text().splitlines()))
    assert [r["run"] for r in rows] == ["ev-base", "ev-slam"]
    assert list(rows[0])[:6] == ["run", "ja", "zh", "de", "en", "average"]
    assert rows[0]["trainable_fraction"] == "" and 0 < float(rows[1]["trainable_fraction"]) < 1
    base = json.loads((pipeline["root"] / "ev-base" / "metrics.json").read_text())
    assert float(rows[0]["average"]) == pytest.approx(base["average"])
    assert "| ev-slam |" in pipeline["procs"]["compare"].stdout
    assert (out / "comparison.png").read_bytes()[:4] == b"\x89PNG"


def test_identify_defaults_to_all_16_languages(letters_dir, pipeline, tmp_path):
    from slam_align.identify.identify import IdentifyOptions, identify

    result = identify(
        IdentifyOptions(model=str(letters_dir), output=str(tmp_path / "i"), benchmark="xcsqa",
                        data_dir=str(pipeline["xcsqa"]), top_k=1, plots=False, progress=False, device="cpu")
    )  # fmt: skip
    assert result["langs"] == list(X.LANGS) and set(result["num_questions"].values()) == {2}
