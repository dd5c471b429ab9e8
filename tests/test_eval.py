"""``slam eval`` end to end on tiny random models over the real MGSM / MSVAMP / GSM8K files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slam_align.errors import SlamError
from slam_align.evaluate.eval import EvalOptions, evaluate
from slam_align.evaluate.extract import answers_match, extract_answer

REPO = Path(__file__).resolve().parents[1]
FIELDS = {"benchmark", "lang", "id", "question", "prediction", "extracted", "answer", "correct"}


@pytest.fixture(scope="module")
def e2e_run(tiny_llama_dir, shared_data, tmp_path_factory):
    """One real ``slam eval`` subprocess over MGSM, MSVAMP and GSM8K."""
    from conftest import run_cli

    out = tmp_path_factory.mktemp("e2e") / "run"
    proc = run_cli(
        "eval",
        "--model", tiny_llama_dir,
        "--benchmark", "mgsm,msvamp,gsm8k",
        "--langs", "en,de,bn,th,te",
        "--data-dir", shared_data,
        "--limit", "2",
        "--max-new-tokens", "6",
        "--batch-size", "4",
        "--output", out,
    )  # fmt: skip
    return out, proc


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_eval_writes_run_directory(e2e_run, shared_data):
    out, proc = e2e_run
    for name in (
        "predictions.jsonl",
        "metrics.json",
        "results.md",
        "accuracy.png",
        "config.yaml",
        "timing.json",
        "README.md",
    ):
        assert (out / name).is_file(), name
    rows = read_rows(out / "predictions.jsonl")
    # mgsm: 5 languages x 2; msvamp has no te: 4 x 2; gsm8k: English only, 2
    assert len(rows) == 10 + 8 + 2
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert FIELDS <= set(r), r
        assert r["extracted"] == extract_answer(r["prediction"], r["lang"])
        assert r["correct"] == answers_match(r["extracted"], r["answer"])
    by_id = {r["id"]: r for r in rows}
    assert by_id["mgsm-de-0"]["answer"] == 18 and by_id["msvamp-bn-0"]["answer"] == 8
    assert by_id["gsm8k-en-1"]["answer"] == 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["benchmarks"]) == ["mgsm", "msvamp", "gsm8k"]
    assert metrics["benchmark"] == "mgsm" and metrics["accuracy"] == metrics["benchmarks"]["mgsm"]["accuracy"]
    assert list(metrics["benchmarks"]["mgsm"]["accuracy"]) == [
        "bn",
        "th",
        "de",
        "te",
        "en",
    ]  # the paper's order
    assert list(metrics["benchmarks"]["msvamp"]["accuracy"]) == ["bn", "th", "de", "en"]
    for m in metrics["benchmarks"].values():
        assert all(0.0 <= v <= 1.0 for v in m["accuracy"].values())
        assert 0.0 <= m["no_answer_rate"] <= 1.0
        lo, hi = m["ci95"]["average"]
        assert lo <= m["average"] <= hi
    m = metrics["benchmarks"]["mgsm"]
    no_answer = sum(r["extracted"] is None for r in rows if r["benchmark"] == "mgsm") / 10
    assert m["no_answer_rate"] == pytest.approx(no_answer)
    timing = json.loads((out / "timing.json").read_text())
    assert (
        timing["problems"] == 20 and timing["problems_generated"] == 20 and timing["problems_per_second"] > 0
    )
    assert "| mgsm |" in (out / "results.md").read_text()
    assert (out / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert "| mgsm |" in proc.stdout


def test_rerun_of_a_finished_run_generates_nothing(e2e_run, shared_data, cli):
    out, _ = e2e_run
    before = (out / "predictions.jsonl").read_text()
    cli(
        "eval", "--model", json.loads((out / "metrics.json").read_text())["model"],
        "--benchmark", "mgsm,msvamp,gsm8k", "--langs", "en,de,bn,th,te", "--data-dir", shared_data,
        "--limit", "2", "--max-new-tokens", "6", "--batch-size", "4", "--output", out,
    )  # fmt: skip
    assert (out / "predictions.jsonl").read_text() == before
    timing = json.loads((out / "timing.json").read_text())
    assert timing["problems_generated"] == 0 and timing["problems_resumed"] == 20


def _options(model, data, out, **kw) -> EvalOptions:
    base = dict(
        model=str(model), output=str(out), benchmark=["mgsm"], langs=["en", "zh"], data_dir=str(data),
        limit=3, max_new_tokens=6, batch_size=4, progress=False, bootstrap=200,
    )  # fmt: skip
    return EvalOptions(**{**base, **kw})


def test_batched_generation_equals_one_by_one(digits_dir, shared_data, tmp_path):
    """Left padding and the attention mask are right: batching does not change a greedy answer."""
    evaluate(
        _options(digits_dir, shared_data, tmp_path / "b1", batch_size=1, langs=["en", "zh", "bn"], limit=4)
    )
    evaluate(
        _options(digits_dir, shared_data, tmp_path / "b5", batch_size=5, langs=["en", "zh", "bn"], limit=4)
    )
    one = {r["id"]: r["prediction"] for r in read_rows(tmp_path / "b1" / "predictions.jsonl")}
    many = {r["id"]: r["prediction"] for r in read_rows(tmp_path / "b5" / "predictions.jsonl")}
    assert one == many
    assert len(set(one.values())) > 1  # the prompts do matter: not a constant output


def test_resume_with_more_problems_and_no_duplicates(digits_dir, shared_data, tmp_path):
    out = tmp_path / "run"
    evaluate(_options(digits_dir, shared_data, out, limit=1))
    first = read_rows(out / "predictions.jsonl")
    assert len(first) == 2
    metrics = evaluate(_options(digits_dir, shared_data, out, limit=3))
    rows = read_rows(out / "predictions.jsonl")
    assert len(rows) == 6 and len({r["id"] for r in rows}) == 6
    assert rows[:2] == first  # earlier lines untouched
    timing = json.loads((out / "timing.json").read_text())
    assert timing["problems_resumed"] == 2 and timing["problems_generated"] == 4
    assert metrics["n"] == {"zh": 3, "en": 3}
    # a smaller request scores only what was asked, from the same file
    metrics = evaluate(_options(digits_dir, shared_data, out, limit=2, langs=["en"]))
    assert metrics["n"] == {"en": 2} and len(read_rows(out / "predictions.jsonl")) == 6


def test_refuses_to_mix_setups(digits_dir, shared_data, tmp_path):
    out = tmp_path / "run"
    evaluate(_options(digits_dir, shared_data, out, limit=1))
    with pytest.raises(SlamError, match="max_new_tokens"):
        evaluate(_options(digits_dir, shared_data, out, limit=1, max_new_tokens=7))
    with pytest.raises(SlamError, match="cot"):
        evaluate(_options(digits_dir, shared_data, out, limit=1, cot=True))
    evaluate(_options(digits_dir, shared_data, out, limit=1, max_new_tokens=7, overwrite=True))
    assert len(read_rows(out / "predictions.jsonl")) == 2
    if sys.platform != "win32":  # a second writer on the same directory is refused
        from slam_align.io import open_run_dir

        holder = open_run_dir(out, "eval", resume=True, resumable=True)
        try:
            with pytest.raises(SlamError, match="another slam eval"):
                evaluate(_options(digits_dir, shared_data, out, limit=2, max_new_tokens=7))
        finally:
            holder.close()
        assert len(read_rows(out / "predictions.jsonl")) == 2
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SlamError, match="not empty and holds no slam run"):
        evaluate(_options(digits_dir, shared_data, other, limit=1))


@pytest.mark.slow
def test_resume_after_kill_writes_no_duplicates(digits_dir, shared_data, tmp_path):
    """Kill a real ``slam eval`` mid-run (SIGKILL), leave a half-written line, run it again."""
    out = tmp_path / "run"
    args = [
        "--model", digits_dir, "--benchmark", "mgsm", "--langs", "en,de,fr,zh", "--data-dir", shared_data,
        "--limit", "20", "--max-new-tokens", "24", "--batch-size", "1", "--output", out, "--no-progress",
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "slam_align", "eval", *map(str, args)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pred = out / "predictions.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if pred.is_file() and len(pred.read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "slam eval finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done_before = len(read_rows(pred))
    assert 3 <= done_before < 80
    with open(pred, "a", encoding="utf-8") as f:
        f.write('{"benchmark": "mgsm", "lang": "en", "id": "mgs')  # a write cut short by the kill
    from conftest import run_cli

    run_cli("eval", *args[:-5], "--batch-size", "16", "--output", out)  # batch size may change on resume
    rows = read_rows(pred)
    assert len(rows) == 80 and len({r["id"] for r in rows}) == 80
    timing = json.loads((out / "timing.json").read_text())
    assert timing["problems_resumed"] == done_before and timing["problems_generated"] == 80 - done_before


def test_jsonl_benchmark_with_synthetic_languages(digits_dir, tmp_path):
    """The demo's path: ``jsonl:PATH`` with ``syn-xx`` languages, from Python."""
    path = tmp_path / "heldout.jsonl"
    rows = [
        {"lang": lang, "question": f"{q} plus {q}?", "answer": 2 * q}
        for lang in ("en", "syn-de", "syn-bn")
        for q in (1, 2, 3)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = evaluate(
        EvalOptions(
            model=str(digits_dir), output=str(tmp_path / "run"), benchmark=[f"jsonl:{path}"],
            max_new_tokens=4, progress=False, bootstrap=100,
        )
    )  # fmt: skip
    assert metrics["benchmark"] == "heldout"
    assert set(metrics["accuracy"]) == {"en", "syn-de", "syn-bn"}
    assert metrics["average_non_en"] is not None and metrics["n"]["syn-de"] == 3


def test_gsm8k_forgetting_check(digits_dir, shared_data, tmp_path):
    metrics = evaluate(
        _options(digits_dir, shared_data, tmp_path / "g", benchmark=["gsm8k"], langs=None, limit=2)
    )
    assert metrics["benchmark"] == "gsm8k" and list(metrics["accuracy"]) == ["en"]
    assert metrics["average_non_en"] is None


def test_stop_strings_stop_generation(digits_dir):
    """A stop string ends a row early (fewer tokens) and is cut from the text."""
    from slam_align.evaluate.generate import TransformersBackend

    backend = TransformersBackend(str(digits_dir))
    prompts = ["Janet has 16 eggs.", "Tom has 3 apples and buys 2 more."]
    free = backend.generate_batch(prompts, 12)
    text = free[0].text
    marker = text[3:5]
    stopped = backend.generate_batch(prompts, 12, stop=[marker])
    assert stopped[0].text == text[: text.find(marker)]
    assert stopped[0].num_tokens < free[0].num_tokens


def test_bad_input_is_one_clear_line(tiny_llama_dir, shared_data, tmp_path, cli):
    proc = cli("eval", "--model", tiny_llama_dir, "--benchmark", "mgsm", "--langs", "xx", "--data-dir", shared_data,
               "--output", tmp_path / "o", check=False)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error:") and "xx" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = cli("eval", "--model", tmp_path / "missing", "--benchmark", "mgsm", "--data-dir", shared_data,
               "--limit", "1", "--output", tmp_path / "o2", check=False)  # fmt: skip
    assert proc.returncode == 2 and "missing" in proc.stderr
    with pytest.raises(SlamError, match="batch-size"):
        evaluate(_options(tiny_llama_dir, shared_data, tmp_path / "o3", batch_size=0))


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("vllm") is not None, reason="vllm is installed: nothing to refuse"
)
def test_vllm_backend_missing_is_a_clear_error(tiny_llama_dir, shared_data, tmp_path):
    with pytest.raises(SlamError, match="vllm"):
        evaluate(_options(tiny_llama_dir, shared_data, tmp_path / "v", backend="vllm", limit=1))


def test_rerun_rescores_saved_rows_and_checks_they_are_the_same_problems(digits_dir, shared_data, tmp_path):
    out = tmp_path / "run"
    evaluate(_options(digits_dir, shared_data, out, limit=2))
    pred = out / "predictions.jsonl"
    rows = read_rows(pred)
    stale = [{**r, "extracted": -1.0, "correct": not r["correct"]} for r in rows]  # as if scored by old code
    pred.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in stale), encoding="utf-8")
    evaluate(_options(digits_dir, shared_data, out, limit=2))
    assert read_rows(pred) == rows
    tampered = [{**rows[0], "question": "something else"}, *rows[1:]]
    pred.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in tampered), encoding="utf-8")
    with pytest.raises(SlamError, match="different question"):
        evaluate(_options(digits_dir, shared_data, out, limit=2))
