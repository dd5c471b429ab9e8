"""Training-data readers on the real QAlign samples and on files in each published format."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from slam_align.data.mixing import read_training_files
from slam_align.data.prompts import get_prompt
from slam_align.data.training import (
    ALIGNMENT,
    RESPONSE,
    Example,
    read_alpaca,
    read_gsm8kinstruct,
    read_mathoctopus,
    read_metamath,
    read_parallel_text,
    read_qalign_pairs,
    read_qalign_question,
    translation_instruction,
)
from slam_align.errors import SlamError

QUESTIONS = "train-samples/qalign_gsmtrans_question"
ANSWERS_EN = "train-samples/qalign_gsm8kinstruct_en/train.first300.jsonl"


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# --- Alpaca ---------------------------------------------------------------------------------


def test_alpaca_json_array_and_jsonl_agree(tmp_path):
    rows = [
        {"instruction": "Add 2 and 3.", "input": "", "output": "2 + 3 = 5. The answer is 5."},
        {"instruction": "Translate.", "input": "Hallo", "output": "Hello", "lang": "de", "kind": "alignment"},
    ]
    (tmp_path / "a.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    _jsonl(tmp_path / "a.jsonl", rows)
    from_array = read_alpaca(tmp_path / "a.json", source="x")
    from_lines = read_alpaca(tmp_path / "a.jsonl", source="x")
    assert from_array == from_lines
    assert from_array[1] == Example("Translate.", "Hello", "Hallo", lang="de", source="x", kind="alignment")
    assert from_array[1].query == "Translate.\n\nHallo" and from_array[0].query == "Add 2 and 3."


def test_alpaca_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(
        '[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c"}\n]\n', encoding="utf-8"
    )
    with pytest.raises(SlamError, match=r"bad.json: line 3: missing field 'output'"):
        read_alpaca(path)
    path.write_text(
        '{"instruction": "a", "output": "b"}\n{"instruction": 5, "output": "b"}\n', encoding="utf-8"
    )
    with pytest.raises(SlamError, match=r"bad.json: line 2: field 'instruction' must be a string"):
        read_alpaca(path)
    path.write_text('{"instruction": "a", "output": "b"}\n{oops\n', encoding="utf-8")
    with pytest.raises(SlamError, match=r"bad.json: line 2: not valid JSON"):
        read_alpaca(path)
    path.write_text('{"instruction": "a", "output": "b", "lang": "xx"}\n', encoding="utf-8")
    with pytest.raises(SlamError, match=r"bad.json: line 1: unknown language code 'xx'"):
        read_alpaca(path)
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(SlamError, match=r"bad.json: file is empty"):
        read_alpaca(path)
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(SlamError, match=r"bad.json: no training examples"):
        read_alpaca(path)
    with pytest.raises(SlamError, match="training file not found"):
        read_alpaca(tmp_path / "missing.jsonl")


def test_alpaca_field_map_on_real_gsm8kinstruct(shared_data):
    examples = read_alpaca(shared_data / ANSWERS_EN, {"instruction": "question", "output": "answer"})
    assert len(examples) == 300 and {e.lang for e in examples} == {"en"}
    assert examples == [
        Example(e.instruction, e.output, source="train.first300.jsonl", kind="") for e in examples
    ]
    assert examples[0].instruction.startswith("Natalia sold clips") and "#### 72" in examples[0].output
    with pytest.raises(SlamError, match="line 1: missing field 'instruction'"):
        read_alpaca(shared_data / ANSWERS_EN)
    with pytest.raises(SlamError, match="unknown field 'prompt'"):
        read_alpaca(shared_data / ANSWERS_EN, {"prompt": "question"})


# --- QAlign question translation ------------------------------------------------------------


def _as_text_pair_dirs(shared_data, root, langs=("de", "ja")):
    """QAlign's original layout (<X>-en/train.X + train.en) rebuilt from the real JSONL samples."""
    for lang in langs:
        rows = [
            json.loads(x)
            for x in (shared_data / QUESTIONS / f"{lang}-en.first200.jsonl").open(encoding="utf-8")
        ]
        pair = root / f"{lang}-en"
        pair.mkdir(parents=True)
        (pair / f"train.{lang}").write_text("".join(r["source"] + "\n" for r in rows), encoding="utf-8")
        (pair / "train.en").write_text("".join(r["target"] + "\n" for r in rows), encoding="utf-8")
    return root


def test_qalign_question_from_real_samples(shared_data):
    examples = read_qalign_question(shared_data / QUESTIONS)
    assert Counter(e.lang for e in examples) == {c: 200 for c in ("de", "es", "fr", "ja", "ru", "sw", "zh")}
    first = next(e for e in examples if e.lang == "de")
    assert first.instruction.startswith(
        "Translate the following sentences from German to English. Natalia hat"
    )
    assert first.output.startswith("Natalia sold clips to 48")
    assert first.input == "" and first.kind == ALIGNMENT
    assert translation_instruction("zh") == "Translate the following sentences from Chinese to English. "
    only = read_qalign_question(shared_data / QUESTIONS, langs=["sw"])
    assert {e.lang for e in only} == {"sw"} and len(only) == 200
    with pytest.raises(SlamError, match="no 'bn-en' data here"):
        read_qalign_question(shared_data / QUESTIONS, langs=["bn"])


def test_qalign_text_files_equal_the_jsonl_form(shared_data, tmp_path):
    root = _as_text_pair_dirs(shared_data, tmp_path / "gsm8kinstruct_question")
    from_text = read_qalign_question(root)
    from_jsonl = read_qalign_question(shared_data / QUESTIONS, langs=["de", "ja"])
    assert [(e.instruction, e.output, e.lang) for e in from_text] == [
        (e.instruction, e.output, e.lang) for e in from_jsonl
    ]
    one = read_qalign_pairs(root / "ja-en")  # a single pair directory
    assert len(one) == 200 and one[0].where.endswith("train.ja: line 1")


def test_parallel_files_of_unequal_length(tmp_path):
    (tmp_path / "train.de").write_text("Eins?\nZwei?\nDrei?\n", encoding="utf-8")
    (tmp_path / "train.en").write_text("One?\nTwo?\n", encoding="utf-8")
    with pytest.raises(
        SlamError, match=r"train.de: 3 lines but .*train.en has 2; parallel files must be line-aligned"
    ):
        read_parallel_text(tmp_path / "train.de", tmp_path / "train.en", "de")
    (tmp_path / "train.en").write_text("One?\n\nThree?\n", encoding="utf-8")
    with pytest.raises(SlamError, match=r"train.en: line 2: empty line"):
        read_qalign_question(tmp_path)


def test_qalign_jsonl_bad_rows(tmp_path):
    path = _jsonl(
        tmp_path / "xx-en.jsonl",
        [{"line": 0, "source_lang": "xx", "target_lang": "en", "source": "a", "target": "b"}],
    )
    with pytest.raises(SlamError, match=r"xx-en.jsonl: line 1: unknown language code 'xx'"):
        read_qalign_question(path)
    _jsonl(path, [{"line": 0, "source_lang": "de", "target_lang": "en", "target": "b"}])
    with pytest.raises(SlamError, match=r"xx-en.jsonl: line 1: missing field 'source'"):
        read_qalign_question(path)


# --- question -> answer formats -------------------------------------------------------------


def _mathoctopus_rows(shared_data):
    """MGSM8KInstruct rows as MathOctopus publishes them: an Alpaca prompt naming the language + `chosen`."""
    template = get_prompt("mathoctopus")
    de = [json.loads(x) for x in (shared_data / QUESTIONS / "de-en.first200.jsonl").open(encoding="utf-8")][
        :5
    ]
    en = [json.loads(x) for x in (shared_data / ANSWERS_EN).open(encoding="utf-8")][:5]
    rows = [{"prompt": template.render(r["question"], lang="en"), "chosen": r["answer"]} for r in en]
    rows += [
        {"prompt": template.render(r["source"], lang="de"), "chosen": "Schritt ... Die Antwort ist 72."}
        for r in de
    ]
    return rows, de, en


def test_mathoctopus_local_and_hub_path(shared_data, tmp_path):
    rows, de, en = _mathoctopus_rows(shared_data)
    path = _jsonl(tmp_path / "MGSM8KInstruct_Parallel.json", rows)
    local = read_mathoctopus(path)
    assert Counter(e.lang for e in local) == {"en": 5, "de": 5}
    assert [e.instruction for e in local[:5]] == [r["question"] for r in en]
    assert [e.instruction for e in local[5:]] == [r["source"] for r in de]
    assert all(e.kind == RESPONSE for e in local)
    hub = read_mathoctopus(hub="json", data_files=str(path), cache_dir=str(tmp_path / "cache"), langs=["de"])
    assert hub == local[5:]
    # The Cross variant carries a `language` field; it wins over the prompt's wording.
    _jsonl(path, [{**rows[0], "language": "Swahili"}])
    assert read_mathoctopus(path)[0].lang == "sw"
    _jsonl(path, [{"prompt": "### Instruction:\nq\n\n### Response:", "chosen": "a"}])
    with pytest.raises(SlamError, match=r"line 1: field 'prompt' names no known language"):
        read_mathoctopus(path)


def test_metamath_and_gsm8kinstruct(shared_data, tmp_path):
    en = [json.loads(x) for x in (shared_data / ANSWERS_EN).open(encoding="utf-8")][:6]
    meta = [
        {"type": t, "query": r["question"], "original_question": r["question"], "response": r["answer"]}
        for t, r in zip(["GSM_AnsAug", "GSM_Rephrased", "MATH_AnsAug"] * 2, en)
    ]
    path = tmp_path / "MetaMathQA-395K.json"
    path.write_text(json.dumps(meta, indent=1), encoding="utf-8")  # one JSON array, as published
    examples = read_metamath(path)
    assert len(examples) == 6 and examples[0].instruction == en[0]["question"]
    assert len(read_metamath(path, types=["GSM_*"])) == 4
    via_hub = read_metamath(hub="json", data_files=str(path), cache_dir=str(tmp_path / "cache"))
    assert via_hub == examples
    gsm = read_gsm8kinstruct(shared_data / ANSWERS_EN)
    assert len(gsm) == 300 and gsm[0].output.endswith("#### 72")
    with pytest.raises(SlamError, match="could not load meta-math/MetaMathQA .* give a local file"):
        read_metamath()  # offline here: the hub default fails with one clear line


# --- mixing files ---------------------------------------------------------------------------


def test_read_training_files_weights(tmp_path):
    a = _jsonl(tmp_path / "a.jsonl", [{"instruction": f"a{i}", "output": "x"} for i in range(30)])
    b = _jsonl(tmp_path / "b.jsonl", [{"instruction": f"b{i}", "output": "y"} for i in range(10)])
    plain = read_training_files([str(a), str(b)])
    assert [e.instruction for e in plain] == [f"a{i}" for i in range(30)] + [f"b{i}" for i in range(10)]
    mixed = read_training_files([f"{a}:1", f"{b}:3"], seed=1)
    counts = Counter(e.instruction[0] for e in mixed)
    assert counts == {"a": 10, "b": 30}  # shares of 40 rows; b repeats its 10 rows three times
    assert read_training_files({str(a): 1, str(b): 3}, seed=1) == mixed
    assert read_training_files([(a, 1), (b, 3)], seed=2) != mixed  # the seed matters
    with pytest.raises(SlamError, match="give a weight to every file or to none"):
        read_training_files([f"{a}:1", str(b)])
    for bad in ("0", "-1", "inf", "nan"):
        with pytest.raises(SlamError, match="weight of .* must be a positive finite number"):
            read_training_files([f"{a}:{bad}", f"{b}:1"])


def test_weighted_mixture_prefix_samples_every_file_by_weight(tmp_path):
    """A row limit (slam train --limit) takes a prefix of the mixture: it must hold every file in
    its share, not the first file's rows only (the weighted mixture is shuffled once, seeded)."""
    a = _jsonl(tmp_path / "a.jsonl", [{"instruction": f"a{i}", "output": "x"} for i in range(300)])
    b = _jsonl(tmp_path / "b.jsonl", [{"instruction": f"b{i}", "output": "y"} for i in range(100)])
    mixed = read_training_files([f"{a}:0.7", f"{b}:0.3"], seed=0)
    assert Counter(e.instruction[0] for e in mixed) == {"a": 280, "b": 120}
    first = Counter(e.instruction[0] for e in mixed[:100])
    assert 55 <= first["a"] <= 85 and 15 <= first["b"] <= 45, first  # ~70/30, not 100/0
