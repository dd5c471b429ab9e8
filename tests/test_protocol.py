"""The published protocol beside ours: ``accuracy_last_number`` equals the peers' own function
on the same file, ``--protocol paper`` generates as their scripts do, and every metrics file
says how its numbers were made."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from slam_align.errors import SlamError
from slam_align.evaluate.eval import EvalOptions, evaluate
from slam_align.evaluate.extract import EXTRACTOR, LAST_NUMBER


def published_extract_last_num(text: str) -> float:
    """A direct re-implementation of the function QAlign and MathOctopus publish
    (QAlign evaluate/scripts/mgsm_test.py:202-209; MathOctopus generate_and_eval.py:198-205):
    drop the comma of every digit,digit; every digits[.digits]; the last one; 0.0 if none."""
    text = re.sub(r"(\d),(\d)", r"\1\2", text)
    found = re.findall(r"(\d+(\.\d+)?)", text)
    return float(found[-1][0]) if found else 0.0


def published_accuracy(rows: list[dict]) -> dict[str, float]:
    """Per language: correct / total with gold = extract(answer), verdict |gold - pred| < 1e-3
    (generate_and_eval.py:94-98, mgsm_test.py:96-100)."""
    hits: dict[str, list[bool]] = {}
    for r in rows:
        gold = published_extract_last_num(str(r["answer"]))
        pred = published_extract_last_num(r["prediction"] or "")
        hits.setdefault(r["lang"], []).append(abs(gold - pred) < 1e-3)
    return {lang: sum(v) / len(v) for lang, v in hits.items()}


# Generations of the kinds the protocols disagree on: commas, decimals, native digits, no number,
# run-on text, answer statements followed by more numbers, European number formats.
GENERATIONS = [
    ("en", "She sells 16 - 3 - 4 = 9 eggs for $2 each: 9 * 2 = $18. The answer is 18.", "18"),
    ("en", "The profit is 200,000 - 130,000 = $70,000.\nThe answer is: 70,000", "70,000"),
    ("en", "1,2,3 are the numbers. The answer is 123", "123"),
    ("en", "The answer is 18.\n\nQuestion: Tom has 7 apples. How many?", "18"),
    ("en", "I cannot solve this problem.", "5"),
    ("en", "Each costs 3.50, so 2 cost 7.0. The answer is 7", "7"),
    ("de", "Sie hat 19,50 € bezahlt. Die Antwort lautet 19,50.", "19.5"),
    ("de", "Es sind 80.000 Menschen. Die Antwort ist 80.000", "80000"),
    ("de", "Die Antwort ist 2,125", "2,125"),
    ("fr", "La réponse est 80 000.", "80000"),
    ("fr", "Je ne sais pas.", "12"),
    ("bn", "১৬ - ৩ - ৪ = ৯, ৯ * ২ = ১৮। উত্তর হল ১৮।", "18"),
    ("bn", "উত্তর হল ১,২০০।", "1200"),
    ("th", "คำตอบคือ ๑๘", "18"),
    ("th", "ไม่ทราบ", "18"),
    ("zh", "答案是１８。", "18"),
    ("zh", "答案是 3 乘以 6，等于 18。共有 2 个篮子。", "18"),
    ("ja", "答えは8,051です。", "8051"),
    ("sw", "Jibu ni 3.5004", "3.5"),
    ("ru", "Ответ — 2,5 литра.", "2.5"),
    ("es", "La respuesta es -12", "12"),
]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_last_number_accuracy_equals_the_published_function(tmp_path, cli):
    rows = [{"lang": lang, "prediction": text, "answer": gold} for lang, text, gold in GENERATIONS]
    path = _write(tmp_path / "gens.jsonl", rows)
    scored = json.loads(cli("score", "--predictions", path, "--json", "--bootstrap", "0").stdout)
    expected = published_accuracy(rows)
    assert scored["accuracy_last_number"] == pytest.approx(expected)
    assert scored["average_last_number"] == pytest.approx(sum(expected.values()) / len(expected))
    # the two protocols do differ on these generations, in both directions
    assert scored["accuracy"] != scored["accuracy_last_number"]
    assert scored["accuracy"]["zh"] > scored["accuracy_last_number"]["zh"]
    assert scored["accuracy"]["de"] > scored["accuracy_last_number"]["de"]
    assert scored["scoring"]["accuracy"]["extractor"] == EXTRACTOR
    assert scored["scoring"]["accuracy_last_number"]["extractor"] == LAST_NUMBER
    text = cli("score", "--predictions", path).stdout
    assert "last number" in text


def test_fuzzed_generations_agree_with_the_published_function():
    """Random strings over digits of several scripts, commas, dots and signs."""
    import random

    from slam_align.evaluate.extract import last_number

    rng = random.Random(0)
    alphabet = list("0123456789,.- a") + list("১৮๑๘１８٤٢")
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        got = last_number(text)
        assert (0.0 if got is None else got) == published_extract_last_num(text), text


def test_real_eval_run_last_number_equals_the_published_function(digits_dir, shared_data, tmp_path):
    """A real slam eval run (a tiny model that writes digits): its metrics.json against the
    published function applied to its own predictions.jsonl."""
    out = tmp_path / "run"
    metrics = evaluate(
        EvalOptions(model=str(digits_dir), output=str(out), benchmark=["mgsm"], langs=["en", "bn", "de"],
                    data_dir=str(shared_data), limit=4, max_new_tokens=6, progress=False, bootstrap=0)
    )  # fmt: skip
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert metrics["accuracy_last_number"] == pytest.approx(published_accuracy(rows))
    for r in rows:
        assert (r["extracted_last_number"] or 0.0) == published_extract_last_num(r["prediction"])


def test_metrics_record_how_numbers_were_made(digits_dir, shared_data, tmp_path):
    out = tmp_path / "run"
    m = evaluate(
        EvalOptions(model=str(digits_dir), output=str(out), benchmark=["mgsm", "msvamp"], langs=["en"],
                    data_dir=str(shared_data), limit=1, max_new_tokens=5, progress=False, bootstrap=0)
    )  # fmt: skip
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["protocol"] == m["protocol"] == "slam" and saved["prompt"] == "alpaca@1"
    gen = saved["generation"]
    assert gen["max_new_tokens"] == {"mgsm": 5, "msvamp": 5} and gen["decoding"] == "greedy"
    assert "### Instruction" in gen["stop_sequences"] and gen["special_tokens"] is True
    assert saved["scoring"]["accuracy"]["extractor"] == EXTRACTOR
    assert "mgsm_test.py" in saved["scoring"]["accuracy_last_number"]["follows"]
    assert "| mgsm (last number) |" in (out / "results.md").read_text()


def test_paper_protocol_generates_as_the_published_scripts(digits_dir, shared_data, tmp_path):
    out = tmp_path / "paper"
    evaluate(
        EvalOptions(model=str(digits_dir), output=str(out), benchmark=["mgsm", "msvamp"], langs=["en"],
                    data_dir=str(shared_data), limit=1, protocol="paper", progress=False, bootstrap=0)
    )  # fmt: skip
    saved = json.loads((out / "metrics.json").read_text())
    gen = saved["generation"]
    assert saved["protocol"] == "paper" and gen["max_new_tokens"] == {"mgsm": 600, "msvamp": 300}
    assert gen["stop"] == "EOS only" and gen["stop_sequences"] == [] and not saved["cot"]
    rows = {r["benchmark"]: r for r in map(json.loads, (out / "predictions.jsonl").read_text().splitlines())}
    assert rows["mgsm"]["num_tokens"] <= 600 and rows["msvamp"]["num_tokens"] <= 300
    # a run directory of one protocol is never continued with another
    with pytest.raises(SlamError, match="max_new_tokens|protocol"):
        evaluate(
            EvalOptions(model=str(digits_dir), output=str(out), benchmark=["mgsm"], langs=["en"],
                        data_dir=str(shared_data), limit=1, progress=False)
        )  # fmt: skip


def test_paper_protocol_refuses_what_the_published_scripts_do_not_do(digits_dir, shared_data, tmp_path, cli):
    proc = cli("eval", "--model", digits_dir, "--benchmark", "mgsm", "--data-dir", shared_data, "--limit", "1",
               "--protocol", "paper", "--cot", "--output", tmp_path / "o", check=False)  # fmt: skip
    assert proc.returncode == 2 and "CoT" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written
    base = dict(model=str(digits_dir), output=str(tmp_path / "o"), benchmark=["mgsm"], data_dir=str(shared_data),
                limit=1, protocol="paper", progress=False)  # fmt: skip
    for extra, match in (({"max_new_tokens": 5}, "drop --max-new-tokens"), ({"prompt": "chat"}, "prompt")):
        with pytest.raises(SlamError, match=match):
            evaluate(EvalOptions(**base, **extra))
        assert not (tmp_path / "o").exists()
    config = Path(__file__).resolve().parents[1] / "configs" / "eval" / "paper.yaml"
    cli("eval", config, "--model", digits_dir, "--output", tmp_path / "p", "--data-dir", shared_data,
        "--limit", "1", "--langs", "en", "--benchmark", "msvamp", "--no-progress")  # fmt: skip
    saved = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert saved["protocol"] == "paper" and saved["generation"]["max_new_tokens"] == {"msvamp": 300}


def test_generation_does_not_stop_at_a_restated_question(tiny_tokenizer):
    """The stopping criterion of the transformers backend: a question marker stops a row only
    once something was worked out before it (a digit), as extraction cuts."""
    import torch

    from slam_align.evaluate.generate import _run_on_criteria

    prompt = tiny_tokenizer("### Response:")["input_ids"]
    stop = ["\nQuestion:", "### Instruction"]
    criteria = _run_on_criteria(tiny_tokenizer, stop, len(prompt))

    def stops(generated: str) -> bool:
        ids = torch.tensor([prompt + tiny_tokenizer(generated, add_special_tokens=False)["input_ids"]])
        return bool(criteria(ids, None)[0])

    assert not stops("\nQuestion:")
    assert not stops("\nQuestion: Janet has eggs.")
    assert stops("\nQuestion: Janet has 16 eggs.\n16 - 3 = 13.\nQuestion:")
    assert stops("So 13.\n### Instruction")
