"""Benchmark loaders on the real MGSM / MSVAMP / GSM8K files, and the hub code path on hub-shaped files."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from slam_align.data import benchmarks
from slam_align.data.benchmarks import BENCHMARK_LANGS, Problem, load_benchmark, parse_gold
from slam_align.data.languages import PAPER_LANGS
from slam_align.errors import SlamError


@pytest.mark.parametrize(
    "text,value",
    [
        ("18", 18.0),
        ("2,125", 2125.0),
        ("276,000", 276000.0),
        ("8.0", 8.0),
        (" -3 ", -3.0),
        (7, 7.0),
        (2.5, 2.5),
    ],
)
def test_parse_gold_gold_answers(text, value):
    assert parse_gold(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "19,50",
        "12 apples",
        "1,2,3",
        "৮",
        True,
        "1.000.000",
        "#### 1,234",
        float("nan"),
        float("inf"),
        "nan",
        "inf",
    ],
)
def test_parse_gold_is_strict(text):
    with pytest.raises(SlamError, match="not a number"):
        parse_gold(text)


def test_problem_id_and_fields():
    p = Problem("mgsm", "de", 3, "Frage?", 5.0, "Question?")
    assert p.id == "mgsm-de-3"
    assert p.to_dict()["id"] == "mgsm-de-3"
    with pytest.raises(AttributeError):
        p.index = 4  # frozen


def test_mgsm_all_languages(shared_data):
    problems = load_benchmark("mgsm", langs="all", data_dir=shared_data)
    counts = Counter(p.lang for p in problems)
    assert set(counts) == set(BENCHMARK_LANGS["mgsm"]) and set(counts.values()) == {250}
    by_lang = {lang: [p for p in problems if p.lang == lang] for lang in counts}
    answers = [p.answer for p in by_lang["en"]]
    for rows in by_lang.values():
        assert [p.index for p in rows] == list(range(250))
        assert [p.answer for p in rows] == answers  # parallel: same answers in every language
        assert [p.question_en for p in rows] == [p.question for p in by_lang["en"]]
    # The four answers written with English thousands commas, in every language.
    assert [answers[i] for i in (146, 201, 230, 249)] == [2125.0, 114200.0, 276000.0, 5600.0]
    assert all(a == int(a) and a >= 1 for a in answers)
    # Spanish row 213 holds quotes mid-field: parsed whole, not cut by a csv quoting rule.
    assert '"' in by_lang["es"][213].question or "“" in by_lang["es"][213].question


def test_mgsm_default_langs_and_folder_forms(shared_data):
    default = load_benchmark("mgsm", data_dir=shared_data, limit=2)
    assert list(dict.fromkeys(p.lang for p in default)) == list(PAPER_LANGS)  # no te unless asked
    direct = load_benchmark("mgsm", langs=["de"], data_dir=shared_data / "mgsm", limit=2)
    assert direct == [p for p in default if p.lang == "de"]


def test_msvamp(shared_data):
    problems = load_benchmark("msvamp", langs="bn,en,de", data_dir=shared_data)
    by_lang = {lang: [p for p in problems if p.lang == lang] for lang in ("bn", "en", "de")}
    assert [len(v) for v in by_lang.values()] == [1000, 1000, 1000]
    assert by_lang["en"][0].answer == 8.0
    for lang in ("bn", "de"):
        assert [p.answer for p in by_lang[lang]] == [p.answer for p in by_lang["en"]]
        # `query` (non-English files) is the English question, row for row.
        assert [p.question_en for p in by_lang[lang]] == [p.question for p in by_lang["en"]]
    assert by_lang["en"][0].question_en == by_lang["en"][0].question
    bengali_digits = sum(any("০" <= ch <= "৯" for ch in p.question) for p in by_lang["bn"])
    assert bengali_digits == 757  # kept as written: extraction normalises digits, not the loader
    with pytest.raises(SlamError, match="msvamp: language 'te' is not available"):
        load_benchmark("msvamp", langs=["te"], data_dir=shared_data)


def test_gsm8k_and_mgsm_overlap(shared_data):
    gsm = load_benchmark("gsm8k", data_dir=shared_data)
    assert len(gsm) == 1319 and {p.lang for p in gsm} == {"en"}
    assert sum(p.answer < 0 for p in gsm) == 2
    mgsm_en = load_benchmark("mgsm", langs="en", data_dir=shared_data)
    assert [p.question for p in gsm[:250]] == [p.question for p in mgsm_en]
    assert [p.answer for p in gsm[:250]] == [p.answer for p in mgsm_en]


def test_limit_keeps_languages_parallel(shared_data):
    problems = load_benchmark("mgsm", langs=["zh", "en"], data_dir=shared_data, limit=5)
    assert [(p.lang, p.index) for p in problems] == [("zh", i) for i in range(5)] + [
        ("en", i) for i in range(5)
    ]
    with pytest.raises(SlamError, match="--limit"):
        load_benchmark("mgsm", langs="en", data_dir=shared_data, limit=0)


def test_unknown_names_are_one_line(shared_data):
    with pytest.raises(SlamError, match="unknown benchmark 'mmlu'"):
        load_benchmark("mmlu", data_dir=shared_data)
    with pytest.raises(SlamError, match="unknown language code 'xx'"):
        load_benchmark("mgsm", langs="en,xx", data_dir=shared_data)
    with pytest.raises(SlamError, match="no msvamp files found"):
        load_benchmark("msvamp", langs="en", data_dir=shared_data / "mgsm")


def test_bad_local_files_name_file_and_line(tmp_path):
    (tmp_path / "mgsm_en.tsv").write_text("What is 1+1?\t2\nno tab here\n", encoding="utf-8")
    with pytest.raises(SlamError, match=r"mgsm_en.tsv: line 2: expected 'question<TAB>answer'"):
        load_benchmark("mgsm", langs="en", data_dir=tmp_path)
    (tmp_path / "mgsm_en.tsv").write_text("What is 1+1?\ttwo\n", encoding="utf-8")
    with pytest.raises(SlamError, match=r"mgsm_en.tsv: line 1: field 'answer': not a number: 'two'"):
        load_benchmark("mgsm", langs="en", data_dir=tmp_path)
    (tmp_path / "test.jsonl").write_text('{"question": "q", "answer": "no final line"}\n', encoding="utf-8")
    with pytest.raises(SlamError, match=r"test.jsonl: line 1: field 'answer' has no '#### <number>'"):
        load_benchmark("gsm8k", data_dir=tmp_path)
    (tmp_path / "test_English.json").write_text('{"m_query": "q"}\n', encoding="utf-8")
    with pytest.raises(SlamError, match=r"test_English.json: line 1: missing field 'response'"):
        load_benchmark("msvamp", langs="en", data_dir=tmp_path)


def test_jsonl_benchmark_with_synthetic_languages(tmp_path):
    path = tmp_path / "heldout.jsonl"
    rows = [
        {"lang": "en", "question": "Tom has 3 apples and buys 4. How many?", "answer": 7},
        {"lang": "syn-de", "question": "Tom hat 3 ...", "answer": "7", "question_en": "Tom has 3 apples..."},
        {"lang": "en", "question": "Ann has 2,000 coins and loses 1,000.", "answer": "1,000"},
        {"lang": "syn-de", "question": "Ann hat ...", "answer": 1000.0},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    problems = load_benchmark(f"jsonl:{path}", langs=["syn-de", "en"])
    assert [p.id for p in problems] == [
        "heldout-syn-de-0",
        "heldout-syn-de-1",
        "heldout-en-0",
        "heldout-en-1",
    ]
    assert [p.answer for p in problems] == [7.0, 1000.0, 7.0, 1000.0]
    assert problems[0].question_en == "Tom has 3 apples..." and problems[1].question_en is None
    assert problems[2].question_en == problems[2].question
    assert len(load_benchmark(f"jsonl:{path}", limit=1)) == 2
    with pytest.raises(SlamError, match="no problems in language 'syn-bn'"):
        load_benchmark(f"jsonl:{path}", langs="syn-bn")
    path.write_text('{"lang": "en", "question": "q"}\n', encoding="utf-8")
    with pytest.raises(SlamError, match=r"heldout.jsonl: line 1: missing field 'answer'"):
        load_benchmark(f"jsonl:{path}")


# --- the hub code path, fed local files shaped like the hub's rows (no network here) ---------


def _hub_files(tmp_path, shared_data):
    """Write hub-shaped rows built from the real files: MGSM has ``answer_number``, GSM8K/MSVAMP as on disk."""
    files = {}
    for lang in ("de", "en"):
        rows = benchmarks.read_mgsm_tsv(shared_data / "mgsm" / f"mgsm_{lang}.tsv")[:20]
        hub_rows = [
            {
                "question": r["question"],
                "answer": None,
                "answer_number": int(r["answer"].replace(",", "")),
                "equation_solution": None,
            }
            for r in rows
        ]
        files[("mgsm", lang)] = _write_jsonl(tmp_path / f"hub-mgsm-{lang}.jsonl", hub_rows)
    for lang, name in (("bn", "Bengali"), ("en", "English")):
        lines = (shared_data / "msvamp" / f"test_{name}.json").read_text(encoding="utf-8").splitlines()[:20]
        files[("msvamp", lang)] = _write_jsonl(tmp_path / f"hub-msvamp-{lang}.jsonl", map(json.loads, lines))
    lines = (shared_data / "gsm8k" / "test.jsonl").read_text(encoding="utf-8").splitlines()[:20]
    files[("gsm8k", "en")] = _write_jsonl(tmp_path / "hub-gsm8k.jsonl", map(json.loads, lines))
    return files


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_hub_path_matches_local_files(tmp_path, shared_data, monkeypatch):
    files = _hub_files(tmp_path, shared_data)
    cache = str(tmp_path / "hf-cache")

    def local_hub(name, lang, split=None):  # the same load_dataset call, a local JSON builder
        return {"path": "json", "data_files": files[(name, lang)], "split": "train", "cache_dir": cache}

    monkeypatch.setattr(benchmarks, "hub_source", local_hub)
    for name, langs in (("mgsm", ["de", "en"]), ("msvamp", ["bn", "en"]), ("gsm8k", ["en"])):
        from_hub = load_benchmark(name, langs=langs, limit=20)
        local = load_benchmark(name, langs=langs, data_dir=shared_data, limit=20)
        assert from_hub == local, name


def test_hub_offline_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(SlamError) as err:
        load_benchmark("msvamp", langs="en")
    message = str(err.value)
    assert "Mathoctopus/MSVAMP" in message and "--data-dir" in message and "\n" not in message
