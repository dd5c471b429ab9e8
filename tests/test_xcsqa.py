"""X-CSQA and benchmark definitions: the loader on files in the distributed JSONL and the hub's row
shapes (16 languages, parallel by id), definition files, decontamination, protocol budgets."""

from __future__ import annotations

import json

import pytest
import xcsqa_data as X
import yaml

from slam_align.data import benchmarks, decontaminate
from slam_align.data.benchmarks import BENCHMARK_LANGS, BENCHMARKS, load_benchmark, parse_benchmarks
from slam_align.data.decontaminate import normalize_text
from slam_align.data.definitions import BUILTIN_DIR, get_definition, read_definition
from slam_align.data.languages import language_name
from slam_align.errors import SlamError


@pytest.fixture
def xcsqa_dir(tmp_path):
    return X.write_distributed(tmp_path / "X-CSR_datasets")


def test_builtin_definitions():
    assert BENCHMARKS == ("mgsm", "msvamp", "gsm8k", "xcsqa")
    assert {p.stem for p in BUILTIN_DIR.glob("*.yaml")} == set(BENCHMARKS)
    d = get_definition("xcsqa")
    assert d.languages == X.LANGS and d.default_langs == X.LANGS and BENCHMARK_LANGS["xcsqa"] == X.LANGS
    assert all(language_name(code) for code in d.languages)
    assert (d.answer_type, d.eval_split, d.parallel, d.code("ja"), d.code("de")) == (
        "choice", "validation", "id", "jap", "de",
    )  # fmt: skip
    assert [(s.name, s.labelled) for s in d.splits.values()] == [("validation", True), ("test", False)]
    assert benchmarks.hub_source("xcsqa", "ja") == {
        "path": "INK-USC/xcsr",
        "name": "X-CSQA-jap",
        "split": "validation",
    }
    assert benchmarks.hub_source("xcsqa", "hi", "test")["split"] == "test"
    assert [get_definition(n).answer_type for n in ("mgsm", "msvamp", "gsm8k")] == ["number"] * 3
    assert d.budget("paper") == 1024 and get_definition("mgsm").budget("paper") is None


def test_distributed_files_all_16_languages(xcsqa_dir):
    problems = load_benchmark("xcsqa", data_dir=xcsqa_dir)  # default: all 16 languages
    assert [p.lang for p in problems[::2]] == list(X.LANGS)
    assert len(problems) == 32 and {p.answer_type for p in problems} == {"choice"}
    for p in problems:
        q = p.index
        stem, texts = X.QUESTIONS[p.lang][q]
        assert p.id == f"xcsqa-{p.lang}-{q}" and p.answer == X.ANSWERS[q]
        assert p.choices == tuple(zip(X.LABELS, texts))
        assert p.question == f"{stem}\nAnswer Choices: " + " ".join(
            f"({a}) {t}" for a, t in zip(X.LABELS, texts)
        )
        en_stem, en_texts = X.QUESTIONS["en"][q]
        assert p.question_en.startswith(en_stem + "\nAnswer Choices: (A) " + en_texts[0])
    # the folder itself, or X-CSQA/ directly, work as --data-dir too; Japanese comes from jap/
    direct = load_benchmark("xcsqa", langs="ja,en", data_dir=xcsqa_dir / "X-CSQA")
    assert [p.question for p in direct[:2]] == [p.question for p in problems if p.lang == "ja"]
    assert (xcsqa_dir / "X-CSQA" / "jap" / "dev.jsonl").is_file()


def test_parallel_by_id_not_by_line(xcsqa_dir):
    """A language file in another order keeps each question's index (the English row's)."""
    path = xcsqa_dir / "X-CSQA" / "de" / "dev.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(reversed(lines)) + "\n", encoding="utf-8")
    de = load_benchmark("xcsqa", langs="de", data_dir=xcsqa_dir)
    assert [(p.index, p.answer) for p in de] == [(0, "D"), (1, "A")]
    assert de[0].question.startswith(X.QUESTIONS["de"][0][0]) and de[0].question_en.startswith(
        X.QUESTIONS["en"][0][0]
    )
    assert [p.id for p in load_benchmark("xcsqa", langs="de,en", data_dir=xcsqa_dir, limit=1)] == [
        "xcsqa-de-0", "xcsqa-en-0",
    ]  # fmt: skip


def test_test_split_has_hidden_answers(xcsqa_dir):
    test = load_benchmark("xcsqa", langs="all", data_dir=xcsqa_dir, split="test")
    assert len(test) == 16 and {p.answer for p in test} == {None} and {p.index for p in test} == {0}
    assert test[0].question.startswith(X.QUESTIONS["en"][2][0])
    with pytest.raises(SlamError, match="xcsqa: no split 'train'; expected one of: validation, test"):
        load_benchmark("xcsqa", data_dir=xcsqa_dir, split="train")


def test_hub_rows_match_the_distributed_files(tmp_path, xcsqa_dir, monkeypatch):
    """The hub path (datasets' dict-of-lists choices, answerKey "" in test) gives the same problems."""
    files = X.write_hub_shaped(tmp_path / "hub")
    cache = str(tmp_path / "hf-cache")

    def local_hub(name, lang, split=None):  # the same load_dataset call on a local JSON file
        assert name == "xcsqa"
        return {
            "path": "json",
            "data_files": files[(lang, split or "validation")],
            "split": "train",
            "cache_dir": cache,
        }

    monkeypatch.setattr(benchmarks, "hub_source", local_hub)
    for split in ("validation", "test"):
        via_hub = load_benchmark("xcsqa", langs="en,ja,ar,hi", split=split)
        local = load_benchmark("xcsqa", langs="en,ja,ar,hi", data_dir=xcsqa_dir, split=split)
        assert via_hub == local and len(via_hub) == (8 if split == "validation" else 4)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda r: r.pop("answerKey"), r"de/dev.jsonl: line 1: field 'answerKey': not a choice label: None"),
        (lambda r: r.update(answerKey="F"), r"line 1: field 'answerKey': not a choice label: 'F'; expected one of A, B, C, D, E"),
        (lambda r: r["question"].update(choices="A B C"), r"line 1: field 'question.choices': expected a list of"),
        (lambda r: r["question"]["choices"][1].update(label="A"), r"field 'question.choices': choice labels must be distinct"),
        (lambda r: r["question"]["choices"][4].update(text=""), r"field 'question.choices': choice 'E' has no text"),
        (lambda r: r["question"].pop("stem"), r"line 1: missing field 'question.stem'"),
        (lambda r: r.update(id="ffffffffffffffff"), r"line 1: id 'ffffffffffffffff' has no English row"),
    ],
)  # fmt: skip
def test_bad_rows_are_one_line_naming_file_line_and_field(xcsqa_dir, edit, message):
    path = xcsqa_dir / "X-CSQA" / "de" / "dev.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    edit(rows[0])
    X.write_jsonl(path, rows)
    with pytest.raises(SlamError, match=message) as err:
        load_benchmark("xcsqa", langs="de", data_dir=xcsqa_dir)
    assert "\n" not in str(err.value)


def test_duplicate_id_and_missing_files(xcsqa_dir, tmp_path):
    path = xcsqa_dir / "X-CSQA" / "de" / "dev.jsonl"
    X.write_jsonl(path, [X.jsonl_row("de", 0), X.jsonl_row("de", 0)])
    with pytest.raises(SlamError, match=r"de/dev.jsonl: line 2: duplicate id 'be1920f7ba5454ad'"):
        load_benchmark("xcsqa", langs="de", data_dir=xcsqa_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SlamError, match=r"no xcsqa files found \(expected \*/dev.jsonl in .* or in .*X-CSQA"):
        load_benchmark("xcsqa", data_dir=tmp_path / "empty")
    with pytest.raises(SlamError, match="xcsqa: language 'bn' is not available here"):
        load_benchmark("xcsqa", langs="bn", data_dir=xcsqa_dir)


def test_decontamination_indexes_validation_and_test_in_every_language(xcsqa_dir):
    index = decontaminate.test_question_index(["xcsqa"], xcsqa_dir)
    for lang in X.LANGS:
        for q in range(
            3
        ):  # the question on its own line is indexed, so a differently laid-out copy is caught
            assert index[normalize_text(X.QUESTIONS[lang][q][0])] == "xcsqa"
    only_test = decontaminate.test_question_index(["xcsqa:test"], xcsqa_dir)
    assert normalize_text(X.QUESTIONS["de"][2][0]) in only_test
    assert normalize_text(X.QUESTIONS["de"][0][0]) not in only_test
    assert set(only_test.values()) == {"xcsqa:test"}
    with pytest.raises(SlamError, match="decontaminate: 'xcsqa:train': xcsqa has no split 'train'"):
        decontaminate.test_question_index(["xcsqa:train"], xcsqa_dir)
    with pytest.raises(
        SlamError, match="decontaminate: unknown test set 'mmlu'; expected some of: mgsm, msvamp"
    ):
        decontaminate.test_question_index(["mmlu"], xcsqa_dir)


# --- definition files: a further benchmark is a data file ------------------------------------


def _definition(tmp_path, **changes) -> str:
    raw = yaml.safe_load((BUILTIN_DIR / "xcsqa.yaml").read_text(encoding="utf-8"))
    raw.update(name="tinyqa", languages=["en", "de"], codes={}, default_langs="all")
    raw["splits"] = {
        "validation": {"local": {"folders": ["tinyqa"], "file": "{lang}.jsonl", "format": "jsonl"}}
    }
    raw.pop("eval_split")
    raw.update(changes)
    path = tmp_path / "tinyqa.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return str(path)


def test_a_definition_file_is_a_new_benchmark(tmp_path):
    folder = tmp_path / "data" / "tinyqa"
    for lang in ("en", "de"):
        X.write_jsonl(folder / f"{lang}.jsonl", [X.jsonl_row(lang, q) for q in (0, 1)])
    path = _definition(
        tmp_path, prompt={"query": "Q: {question}\n{choices}", "choice": "{label}. {text}", "separator": "\n"}
    )
    problems = load_benchmark(path, data_dir=tmp_path / "data")
    assert [p.id for p in problems] == ["tinyqa-en-0", "tinyqa-en-1", "tinyqa-de-0", "tinyqa-de-1"]
    assert (
        problems[2].question
        == "Q: "
        + X.QUESTIONS["de"][0][0]
        + "\nA. Kopfschmerzen\nB. größeres Gehirn\nC. Bildung\nD. Wachstum\nE. mehr wissen"
    )
    assert parse_benchmarks(f"mgsm,{path}") == ["mgsm", path]
    assert get_definition("tinyqa").path == path  # registered under its name once read


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"answer_type": "text"}, r"tinyqa.yaml: field 'answer_type': is 'text'; expected one of: number, choice"),
        ({"languages": ["en", "xx"]}, r"field 'languages': unknown language code 'xx'"),
        ({"prompt": {"query": "{stem}"}}, r"field 'prompt.query': unknown placeholder '\{stem\}'; expected \{choices\}, \{question\}"),
        ({"fields": {"question": "question.stem", "answer": "answerKey"}}, r"field 'fields': missing field 'choices'"),
        ({"parallel": "line"}, r"field 'parallel': is 'line'; expected one of: index, id"),
        ({"splits": {"validation": {"local": {"file": "x.jsonl", "format": "csv"}}}}, r"field 'splits.validation.local.format': is 'csv'"),
        ({"protocols": {"paper": {"max_new_tokens": 0}}}, r"field 'protocols.paper.max_new_tokens': must be a positive integer"),
        ({"colour": "red"}, r"definition: unknown key 'colour'"),
        ({"name": "mgsm"}, r"benchmark name 'mgsm' is already taken by .*mgsm.yaml"),
    ],
)  # fmt: skip
def test_bad_definitions_name_file_and_field(tmp_path, changes, message):
    with pytest.raises(SlamError, match=message) as err:
        get_definition(_definition(tmp_path, **changes))
    assert "\n" not in str(err.value)


def test_definition_file_not_found(tmp_path):
    with pytest.raises(SlamError, match="nothere.yaml: benchmark definition not found"):
        read_definition(tmp_path / "nothere.yaml")
    with pytest.raises(
        SlamError, match="unknown benchmark 'mmlu'; expected one of: mgsm, msvamp, gsm8k, xcsqa"
    ):
        parse_benchmarks("mgsm,mmlu")


def test_paper_protocol_budget_of_xcsqa_comes_from_its_definition():
    from slam_align.data.prompts import get_prompt
    from slam_align.evaluate.eval import PROTOCOLS, EvalOptions, generation_settings, identity

    paper = PROTOCOLS["paper"]
    assert [paper.budget(b) for b in ("mgsm", "msvamp", "gsm8k", "xcsqa")] == [600, 300, 600, 1024]
    assert PROTOCOLS["slam"].budget("xcsqa") == 512 and paper.budget("xcsqa", 7) == 7
    opts = EvalOptions(model="m", output="o", benchmark=["mgsm", "xcsqa"], protocol="paper")
    gen = generation_settings(opts, get_prompt("alpaca"), ["mgsm", "xcsqa"])
    assert gen["max_new_tokens"] == {"mgsm": 600, "xcsqa": 1024}
    assert gen["protocol_description"].endswith("; 1024 new tokens on xcsqa (its definition)")
    # a run without X-CSQA records exactly what it did before (its identity lets old runs resume)
    assert (
        generation_settings(opts, get_prompt("alpaca"), ["mgsm"])["protocol_description"] == paper.description
    )
    assert identity(opts)["max_new_tokens"] == "mgsm 600, msvamp 300, other 600"
