"""``slam score``: re-scoring saved generations reproduces ``slam eval``'s metrics; foreign files work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slam_align.evaluate.eval import EvalOptions, evaluate
from slam_align.evaluate.report import compute_metrics
from slam_align.evaluate.score import score_predictions


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


COMPARED = ("accuracy", "average", "average_non_en", "en_retention", "ci95", "no_answer_rate", "n", "correct")


def test_score_reproduces_eval_metrics(digits_dir, shared_data, tmp_path, cli):
    """A run with right and wrong answers and outputs without a number, re-scored by the CLI."""
    model = digits_dir
    questions = [json.loads(json.dumps({"q": line.rsplit("\t", 1)[0]})) for line in
                 (shared_data / "mgsm" / "mgsm_en.tsv").read_text(encoding="utf-8").splitlines()[:6]]  # fmt: skip
    probe = tmp_path / "probe.jsonl"
    probe.write_text("".join(json.dumps({"lang": lang, "index": i, "question": q["q"], "answer": 1}) + "\n"
                             for lang in ("en", "de", "syn-fr") for i, q in enumerate(questions)))  # fmt: skip
    opts = dict(model=str(model), max_new_tokens=5, progress=False, bootstrap=300, seed=3)
    evaluate(EvalOptions(output=str(tmp_path / "probe"), benchmark=[f"jsonl:{probe}"], **opts))
    # Gold answers chosen so that about half the problems are answered right.
    said = {(r["lang"], r["index"]): r["extracted"] for r in _rows(tmp_path / "probe" / "predictions.jsonl")}
    bench = tmp_path / "bench.jsonl"
    rows = []
    for (lang, i), value in sorted(said.items()):
        gold = value if (value is not None and i % 2 == 0) else 123456
        rows.append({"lang": lang, "index": i, "question": questions[i]["q"], "answer": gold})
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    metrics = evaluate(EvalOptions(output=str(run), benchmark=[f"jsonl:{bench}"], **opts))
    assert 0 < metrics["average"] < 1, "the check needs both right and wrong answers"

    proc = cli(
        "score", "--predictions", run / "predictions.jsonl", "--json", "--bootstrap", "300", "--seed", "3"
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    scored = json.loads(lines[0])
    saved = json.loads((run / "metrics.json").read_text())
    for key in COMPARED:
        assert scored[key] == saved[key], key
    assert scored["benchmarks"]["bench"]["accuracy"] == saved["benchmarks"]["bench"]["accuracy"]
    assert scored["rescored"]["changed_vs_file"] == 0
    # the human-readable form too
    text = cli("score", "--predictions", run / "predictions.jsonl").stdout
    assert "average" in text and "syn-fr" in text


def test_score_reproduces_no_answer_rate(tiny_llama_dir, shared_data, tmp_path, cli):
    """A random model mostly writes no number: the no-answer rate is counted, and such rows are wrong."""
    out = tmp_path / "run"
    saved = evaluate(
        EvalOptions(model=str(tiny_llama_dir), output=str(out), benchmark=["msvamp"], langs=["en", "bn"],
                    data_dir=str(shared_data), limit=3, max_new_tokens=6, progress=False)
    )  # fmt: skip
    assert saved["no_answer_rate"] > 0
    scored = json.loads(cli("score", "--predictions", out / "predictions.jsonl", "--json").stdout)
    for key in COMPARED:
        assert scored[key] == saved[key], key
    for r in _rows(out / "predictions.jsonl"):
        if r["extracted"] is None:
            assert r["correct"] is False


def test_rescoring_other_tools_output(tmp_path, cli):
    """A foreign JSONL (no benchmark, no index, string answers): extraction fixes change its score."""
    rows = [
        {
            "lang": "de",
            "prediction": "Sie zahlt 19,50 €. Die Antwort lautet 19,50.",
            "answer": "19.5",
            "correct": False,
        },
        {"lang": "de", "prediction": "Das sind 80.000 Menschen.", "answer": 80000, "correct": False},
        {"lang": "bn", "prediction": "উত্তর হল ১৮।", "answer": "18", "correct": False},
        {"lang": "bn", "prediction": "আমি জানি না", "answer": "0", "correct": True},  # no number is never 0
        {
            "lang": "en",
            "prediction": "The answer is 2,125.\n\nQuestion: x? The answer is 3.",
            "answer": "2,125",
        },
        {"lang": "en", "prediction": "The answer is 7", "answer": 8},
    ]
    path = tmp_path / "other.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    result = json.loads(cli("score", "--predictions", path, "--json").stdout)
    assert result["accuracy"] == {"bn": 0.5, "de": 1.0, "en": 0.5}
    assert result["average"] == pytest.approx(2 / 3)
    assert result["average_non_en"] == pytest.approx(0.75)
    assert result["no_answer_rate"] == pytest.approx(1 / 6)
    assert result["rescored"]["changed_vs_file"] == 4


def test_score_errors_name_file_line_and_field(tmp_path, cli):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"lang": "en", "prediction": "7", "answer": 7}\n{"lang": "en", "prediction": "7"}\n')
    proc = cli("score", "--predictions", path, check=False)
    assert proc.returncode == 2
    assert "line 2" in proc.stderr and "'answer'" in proc.stderr and str(path) in proc.stderr
    path.write_text('{"lang": "en", "prediction": "7", "answer": 7}\n{"lang": "en", "pred\n')
    proc = cli("score", "--predictions", path, check=False)
    assert proc.returncode == 2 and "line 2" in proc.stderr and "not valid JSON" in proc.stderr
    proc = cli("score", "--predictions", tmp_path / "none.jsonl", check=False)
    assert proc.returncode == 2 and "not found" in proc.stderr


def test_paired_bootstrap_is_seeded_and_brackets_the_mean():
    rows = [{"benchmark": "b", "lang": lang, "index": i, "correct": (i * 7 + len(lang)) % 3 == 0, "extracted": 1.0}
            for lang in ("en", "de", "zh") for i in range(40)]  # fmt: skip
    a = compute_metrics(rows, n_boot=500, seed=1)
    b = compute_metrics(rows, n_boot=500, seed=1)
    c = compute_metrics(rows, n_boot=500, seed=2)
    assert a == b and a["ci95"] != c["ci95"]
    for lang, acc in a["accuracy"].items():
        lo, hi = a["ci95"]["accuracy"][lang]
        assert lo <= acc <= hi and hi - lo < 0.5
    lo, hi = a["ci95"]["average"]
    assert lo <= a["average"] <= hi
    assert a["en_retention"] == pytest.approx(a["average_non_en"] / a["accuracy"]["en"])


def test_score_predictions_api():
    scored, metrics = score_predictions(
        [{"lang": "fr", "prediction": "La réponse est 80 000.", "answer": 80000}]
    )
    assert scored[0]["correct"] is True and metrics["accuracy"] == {"fr": 1.0}
