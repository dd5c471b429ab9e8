"""``slam eval --checkpoints`` on a real tiny ``slam train`` run with ``--save-steps``, and
``slam compare --select-on``: the best checkpoint chosen on a held-out split, never a test set."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from slam_align.errors import SlamError
from slam_align.evaluate.eval import EvalOptions, evaluate


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def train_run(digits_dir, tmp_path_factory):
    """A real ``slam train`` run: SLAM on the digit-writing tiny Llama, a checkpoint every 2 steps."""
    from slam_align.train.train import TrainOptions, train

    tmp = tmp_path_factory.mktemp("ckpt")
    rows = [{"instruction": f"What is {i} + {i}?", "output": f"{i} + {i} = {2 * i}. The answer is {2 * i}."}
            for i in range(12)]  # fmt: skip
    out = tmp / "run"
    train(
        TrainOptions(model=str(digits_dir), method="slam", layers="0-1", data=[str(_jsonl(tmp / "t.jsonl", rows))],
                     output=str(out), max_steps=6, save_steps=2, learning_rate=0.01, per_device_train_batch_size=4,
                     cutoff_len=96, progress=False)
    )  # fmt: skip
    assert {p.name for p in out.glob("checkpoint-*")} == {"checkpoint-2", "checkpoint-4", "checkpoint-6"}
    return out


def _problems(path: Path, answers: dict | None = None) -> Path:
    """A small jsonl: benchmark in two languages (golds from ``answers`` when given)."""
    rows = []
    for lang in ("en", "syn-de"):
        for i in range(3):
            rows.append({"lang": lang, "index": i, "question": f"Tom has {i + 3} apples and buys {i}. How many?",
                         "answer": (answers or {}).get((lang, i), 2 * i + 3)})  # fmt: skip
    return _jsonl(path, rows)


COMMON = dict(max_new_tokens=6, progress=False, bootstrap=0)


@pytest.mark.slow
def test_eval_every_checkpoint_of_a_run(train_run, tmp_path, cli):
    """The command line, twice (the second run resumes every checkpoint's directory)."""
    bench = _problems(tmp_path / "dev.jsonl")
    out = tmp_path / "sweep"
    proc = cli("eval", "--model", train_run, "--checkpoints", "all", "--benchmark", f"jsonl:{bench}",
               "--max-new-tokens", "6", "--bootstrap", "0", "--output", out, "--no-progress")  # fmt: skip
    summary = json.loads((out / "metrics.json").read_text())
    names = [e["name"] for e in summary["checkpoints"]]
    assert names == ["checkpoint-2", "checkpoint-4", "checkpoint-6", "final"]
    assert [e["step"] for e in summary["checkpoints"]] == [2, 4, 6, 6]
    for name in names:  # one ordinary slam eval run directory per checkpoint
        m = json.loads((out / name / "metrics.json").read_text())
        assert m["model"] == str(train_run / name)
        assert set(m["accuracy"]) == {"en", "syn-de"} and "accuracy_last_number" in m
        entry = next(e for e in summary["checkpoints"] if e["name"] == name)
        assert entry["benchmarks"]["dev"]["average"] == m["average"]
        assert entry["benchmarks"]["dev"]["average_last_number"] == m["average_last_number"]
    # the checkpoints are different models: their generations are not all the same
    preds = [(out / n / "predictions.jsonl").read_text() for n in names]
    assert len(set(preds)) > 1
    table = (out / "accuracy_by_step.md").read_text()
    assert "| checkpoint-4 | 4 |" in table and "dev avg (last number)" in table
    rows = list(csv.DictReader((out / "accuracy_by_step.csv").read_text().splitlines()))
    assert [r["checkpoint"] for r in rows] == names and rows[0]["benchmark"] == "dev"
    assert (out / "accuracy_by_step.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((out / "run.json").read_text())["command"] == "eval --checkpoints"
    assert "checkpoint-6" in proc.stdout or "checkpoint-6" in table
    # again: every checkpoint resumes (nothing generated), same summary
    before = (out / "checkpoint-2" / "predictions.jsonl").read_text()
    cli("eval", "--model", train_run, "--checkpoints", "all", "--benchmark", f"jsonl:{bench}",
        "--max-new-tokens", "6", "--bootstrap", "0", "--output", out, "--no-progress")  # fmt: skip
    assert (out / "checkpoint-2" / "predictions.jsonl").read_text() == before
    assert json.loads((out / "metrics.json").read_text())["checkpoints"] == summary["checkpoints"]


def test_choosing_checkpoints_and_bad_choices(train_run, tmp_path):
    bench = _problems(tmp_path / "dev.jsonl")
    opts = dict(model=str(train_run), benchmark=[f"jsonl:{bench}"], **COMMON)
    some = evaluate(EvalOptions(output=str(tmp_path / "some"), checkpoints=["4", "final"], **opts))
    assert [e["name"] for e in some["checkpoints"]] == ["checkpoint-4", "final"]
    last = evaluate(EvalOptions(output=str(tmp_path / "last"), checkpoints=["last"], **opts))
    assert [e["name"] for e in last["checkpoints"]] == ["final"]
    for spec, match in ((["7"], "has no such checkpoint.*2, 4, 6, final"), (["four"], "not all, last"),
                        (["all", "2"], "cannot be combined")):  # fmt: skip
        with pytest.raises(SlamError, match=match):
            evaluate(EvalOptions(output=str(tmp_path / "bad"), checkpoints=spec, **opts))
        assert not (tmp_path / "bad").exists()  # nothing half-written
    with pytest.raises(SlamError, match="not a directory"):
        evaluate(EvalOptions(**{**opts, "model": str(tmp_path / "nope")}, output=str(tmp_path / "b"),
                             checkpoints=["all"]))  # fmt: skip
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(SlamError, match="no complete checkpoint-N"):
        evaluate(
            EvalOptions(**{**opts, "model": str(empty)}, output=str(tmp_path / "b"), checkpoints=["all"])
        )
    # a plain slam eval directory is not a sweep, and the other way round
    with pytest.raises(SlamError, match="eval --checkpoints"):
        evaluate(EvalOptions(**{**opts, "model": str(train_run / "final")}, output=str(tmp_path / "some")))


def test_compare_selects_the_best_checkpoint_on_the_held_out_split(train_run, tmp_path, cli):
    # Golds of the held-out split chosen so that checkpoint-4 answers all of them right.
    probe = evaluate(
        EvalOptions(model=str(train_run), output=str(tmp_path / "probe"), checkpoints=["4"],
                    benchmark=[f"jsonl:{_problems(tmp_path / 'p.jsonl')}"], **COMMON)
    )  # fmt: skip
    assert probe["checkpoints"][0]["name"] == "checkpoint-4"
    said = {}
    for line in (tmp_path / "probe" / "checkpoint-4" / "predictions.jsonl").read_text().splitlines():
        r = json.loads(line)
        said[(r["lang"], r["index"])] = r["extracted"] if r["extracted"] is not None else 99
    dev = tmp_path / "dev"
    evaluate(EvalOptions(model=str(train_run), output=str(dev), checkpoints=["all"],
                         benchmark=[f"jsonl:{_problems(tmp_path / 'heldout.jsonl', said)}"], **COMMON))  # fmt: skip
    dev_scores = {e["name"]: e["benchmarks"]["heldout"]["average"]
                  for e in json.loads((dev / "metrics.json").read_text())["checkpoints"]}  # fmt: skip
    assert dev_scores["checkpoint-4"] == 1.0, dev_scores  # its own answers
    best = max(dev_scores, key=lambda k: (dev_scores[k], -list(dev_scores).index(k)))
    test = tmp_path / "test"
    evaluate(EvalOptions(model=str(train_run), output=str(test), checkpoints=["all"],
                         benchmark=[f"jsonl:{_problems(tmp_path / 'test.jsonl')}"], **COMMON))  # fmt: skip

    out = tmp_path / "cmp"
    proc = cli("compare", test, "--select-on", dev, "--output", out)
    result = json.loads((out / "metrics.json").read_text())
    assert [r["checkpoint"] for r in result["runs"]] == [best]
    assert result["selection"][0]["selected"] == best and result["selection"][0]["split"] == "heldout"
    test_summary = json.loads((test / "metrics.json").read_text())
    chosen = next(e for e in test_summary["checkpoints"] if e["name"] == best)
    assert result["runs"][0]["average"] == chosen["benchmarks"]["test"]["average"]
    assert f"{best} selected on" in proc.stdout
    # selecting on the split that is reported is refused too
    proc = cli("compare", dev, "--select-on", dev, check=False)
    assert proc.returncode == 2 and "heldout" in proc.stderr and "held-out" in proc.stderr
    # without selection: one row per checkpoint; --metric picks the plotted accuracy
    every = json.loads(cli("compare", test, "--metric", "last-number", "--output", tmp_path / "c2").stdout
                       and (tmp_path / "c2" / "metrics.json").read_text())  # fmt: skip
    assert [r["checkpoint"] for r in every["runs"]] == [
        "checkpoint-2",
        "checkpoint-4",
        "checkpoint-6",
        "final",
    ]
    assert every["metric"] == "last-number"
    rows = list(csv.DictReader((tmp_path / "c2" / "comparison.csv").read_text().splitlines()))
    assert float(rows[0]["average"]) == every["runs"][0]["average_last_number"]
    assert "published protocol" in (tmp_path / "c2" / "comparison.md").read_text()


def test_compare_never_selects_on_a_test_set(train_run, digits_dir, shared_data, tmp_path, cli):
    on_test = tmp_path / "on-mgsm"
    evaluate(EvalOptions(model=str(train_run), output=str(on_test), checkpoints=["last"], benchmark=["mgsm"],
                         langs=["en"], data_dir=str(shared_data), limit=1, **COMMON))  # fmt: skip
    proc = cli("compare", on_test, "--select-on", on_test, check=False)
    assert proc.returncode == 2 and "test set" in proc.stderr and "mgsm" in proc.stderr
    plain = tmp_path / "plain"
    evaluate(EvalOptions(model=str(digits_dir), output=str(plain), benchmark=["mgsm"], langs=["en"],
                         data_dir=str(shared_data), limit=1, **COMMON))  # fmt: skip
    proc = cli("compare", on_test, "--select-on", plain, check=False)
    assert proc.returncode == 2 and "not a checkpoint sweep" in proc.stderr


def test_two_stage_runs_give_their_last_stages_checkpoints(tmp_path):
    """RUN/stage2/checkpoint-N (never stage 1's), final/ at the last stage's step; a checkpoint
    cut short (trainer_state.json unreadable) is skipped."""
    from slam_align.evaluate.checkpoints import find_checkpoints

    for stage, steps in (("stage1", [5, 10]), ("stage2", [3, 4])):
        for n in steps:
            ckpt = tmp_path / stage / f"checkpoint-{n}"
            ckpt.mkdir(parents=True)
            (ckpt / "config.json").write_text("{}")
            (ckpt / "trainer_state.json").write_text("{}" if n != 4 else '{"global_st')
    (tmp_path / "final").mkdir()
    (tmp_path / "final" / "config.json").write_text("{}")
    (tmp_path / "timing.json").write_text(
        json.dumps({"stages": {"stage1": {"steps": 10}, "stage2": {"steps": 4}}})
    )
    found = find_checkpoints(tmp_path)
    assert [(c.name, c.step, c.path.parent.name) for c in found] == [
        ("checkpoint-3", 3, "stage2"),
        ("final", 4, tmp_path.name),
    ]
