"""`slam data build` / `slam data inspect` as real subprocesses on the real samples, plus the API."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from slam_align.data.benchmarks import load_benchmark
from slam_align.data.build import BuildOptions, build, build_mixture, sample_source
from slam_align.data.decontaminate import normalize_text
from slam_align.data.training import Example, read_alpaca
from slam_align.errors import SlamError

REPO = Path(__file__).resolve().parents[1]
SAMPLE_LANGS = ("de", "es", "fr", "ja", "ru", "sw", "zh")


def _config(tmp_path, shared_data, sources, **extra) -> Path:
    cfg = {"name": "test", "seed": 7, "test_data_dir": str(shared_data), "sources": sources, **extra}
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_shared_sample_config_builds_the_slam_mixture(cli, shared_data, tmp_path):
    out = tmp_path / "mix"
    proc = cli(
        "data", "build", "configs/data/shared-sample.yaml", "--output", out, "--test-data-dir", shared_data
    )
    assert "wrote" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "config.yaml",
        "environment.json",
        "metrics.json",
        "run.json",
        "stats.json",
        "timing.json",
        "train.jsonl",
    ]
    assert json.loads((out / "run.json").read_text())["command"] == "data build"
    rows = _rows(out / "train.jsonl")
    assert set(rows[0]) == {"instruction", "input", "output", "lang", "source", "kind"}
    stats = json.loads((out / "stats.json").read_text())
    per_source = stats["rows_per_source"]
    untranslated = stats["removed_untranslated"]["question-alignment"]
    assert untranslated == stats["removed_untranslated"]["x-question-en-answer"] > 0
    assert sum(per_source["question-alignment"].values()) == 7 * 200 - untranslated
    assert set(per_source["question-alignment"]) == set(SAMPLE_LANGS)
    assert per_source["en-question-en-answer"] == {"en": 300}
    assert stats["rows"] == len(rows) == sum(sum(v.values()) for v in per_source.values())
    assert stats["removed_contaminated"]["total"] == 0  # GSM8K train data: no test questions
    assert stats["test_questions_indexed"] > 10000
    # X question -> English chain-of-thought answer: a German question, GSM8K-style English answer.
    de = next(r for r in rows if r["source"] == "x-question-en-answer" and r["lang"] == "de")
    assert "####" in de["output"] and not de["instruction"].startswith("Translate")
    aligned = next(r for r in rows if r["kind"] == "alignment" and r["lang"] == "ja")
    assert aligned["instruction"].startswith("Translate the following sentences from Japanese to English. ")
    # the output directory is a valid training file, and config.yaml rebuilds it identically
    assert len(read_alpaca(out / "train.jsonl")) == len(rows)
    again = tmp_path / "again"
    cli("data", "build", out / "config.yaml", "--output", again)
    assert (again / "train.jsonl").read_bytes() == (out / "train.jsonl").read_bytes()
    # never overwrite silently
    proc = cli("data", "build", "configs/data/shared-sample.yaml", "--output", out, check=False)
    assert proc.returncode == 2 and "pass --overwrite" in proc.stderr
    cli("data", "build", "configs/data/shared-sample.yaml", "--output", out, "--overwrite", "--seed", "3")
    assert (out / "train.jsonl").read_bytes() != (again / "train.jsonl").read_bytes()  # reshuffled
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_two_kind_config_is_the_mixture_without_english_rows(cli, shared_data, tmp_path):
    """The released composition: the same two kinds, row for row, and no English source."""
    full, twin = tmp_path / "full", tmp_path / "twin"
    cli("data", "build", "configs/data/shared-sample.yaml", "--output", full, "--test-data-dir", shared_data)
    cli(
        "data",
        "build",
        "configs/data/shared-sample-two-kind.yaml",
        "--output",
        twin,
        "--test-data-dir",
        shared_data,
    )
    stats = json.loads((twin / "stats.json").read_text())
    assert set(stats["rows_per_source"]) == {"question-alignment", "x-question-en-answer"}
    assert "en" not in stats["rows_per_language"]

    def key(r):
        return (r["source"], r["lang"], r["instruction"], r["output"])

    kept = sorted(map(key, _rows(twin / "train.jsonl")))
    assert kept == sorted(
        key(r) for r in _rows(full / "train.jsonl") if r["source"] != "en-question-en-answer"
    )


def test_contaminated_rows_are_removed_and_counted(cli, shared_data, tmp_path):
    mgsm_de = load_benchmark("mgsm", langs="de", data_dir=shared_data)[5]
    gsm8k = load_benchmark("gsm8k", data_dir=shared_data)[1000]
    msvamp_bn = load_benchmark("msvamp", langs="bn", data_dir=shared_data)[3]
    mgsm_en = load_benchmark("mgsm", langs="en", data_dir=shared_data)[7]
    clean = [
        json.loads(x)
        for x in (shared_data / "train-samples/qalign_gsm8kinstruct_en/train.first300.jsonl").open()
    ]
    rows = [{"instruction": r["question"], "output": r["answer"]} for r in clean[:20]]
    planted = [
        {"instruction": mgsm_de.question, "output": "Die Antwort ist 1.", "lang": "de"},
        # case, spacing and punctuation differ: still the same question
        {"instruction": gsm8k.question.upper().replace(".", " . "), "output": "The answer is 1."},
        # Bengali digits written as ASCII digits: still the same question
        {"instruction": msvamp_bn.question.translate(str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")), "output": "x", "lang": "bn"},
        # an alignment pair whose English side is MGSM's English question (= GSM8K test row 7)
        {"instruction": "Translate the following sentences from French to English. Une question.",
         "output": mgsm_en.question, "lang": "fr", "kind": "alignment"},
    ]  # fmt: skip
    data = tmp_path / "train.jsonl"
    data.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows + planted), encoding="utf-8"
    )
    cfg = _config(tmp_path, shared_data, [{"name": "mine", "type": "alpaca", "path": str(data)}])
    out = tmp_path / "mix"
    cli("data", "build", cfg, "--output", out)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["removed_contaminated"] == {
        "total": 4,
        "per_source": {"mine": 4},
        "per_test_set": {"mgsm": 2, "gsm8k": 1, "msvamp": 1},  # MGSM-en = GSM8K row 7: counted once
    }
    kept = _rows(out / "train.jsonl")
    assert len(kept) == 20
    test_questions = {normalize_text(p["instruction"]) for p in planted}
    assert not test_questions & {normalize_text(r["instruction"]) for r in kept}
    # without decontamination they stay (so the check above is what removed them)
    out2 = tmp_path / "mix2"
    cli("data", "build", cfg, "--output", out2, "--decontaminate", "")
    assert len(_rows(out2 / "train.jsonl")) == 24


def test_bad_input_is_one_line_and_writes_nothing(cli, shared_data, tmp_path):
    out = tmp_path / "mix"
    cases = [
        ([{"type": "qalign-question", "path": str(shared_data / "train-samples/qalign_gsmtrans_question"), "langs": ["de", "xx"]}],
         "field 'langs': unknown language code 'xx'"),
        ([{"type": "alpaca", "path": str(tmp_path / "bad.jsonl")}], "bad.jsonl: line 2: missing field 'output'"),
        ([{"type": "qalign-question", "path": str(tmp_path / "pair")}], "parallel files must be line-aligned"),
        ([{"type": "alpaca", "path": str(tmp_path / "ok.jsonl"), "lang": "de"}], "empty result after filtering"),
        ([{"type": "nope", "path": "x"}], "field 'type' is 'nope'"),
        ([{"type": "alpaca", "path": "x", "size": 10, "ratio": 0.5}], "give one of size, ratio, per_language"),
    ]  # fmt: skip
    (tmp_path / "bad.jsonl").write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n')
    (tmp_path / "ok.jsonl").write_text('{"instruction": "a", "output": "b"}\n')
    (tmp_path / "pair").mkdir()
    (tmp_path / "pair" / "train.de").write_text("Eins?\nZwei?\n")
    (tmp_path / "pair" / "train.en").write_text("One?\n")
    for sources, message in cases:
        cfg = _config(tmp_path, shared_data, sources, langs=["de"] if "empty" not in message else ["fr"])
        proc = cli("data", "build", cfg, "--output", out, check=False)
        assert proc.returncode == 2, proc.stderr
        err = proc.stderr.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err, err
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_sizes_balance_and_seed(shared_data):
    rows = [
        Example(f"q{lang}{i}", "a", lang=lang)
        for lang, n in (("de", 50), ("fr", 50), ("sw", 8))
        for i in range(n)
    ]
    balanced = sample_source(rows, {"size": 60}, seed=1, name="s", balance=True)
    assert Counter(e.lang for e in balanced) == {
        "sw": 8,
        "de": 26,
        "fr": 26,
    }  # sw's shortfall goes to the others
    assert balanced == sample_source(rows, {"size": 60}, seed=1, name="s", balance=True)
    assert balanced != sample_source(rows, {"size": 60}, seed=2, name="s", balance=True)
    assert Counter(e.lang for e in sample_source(rows, {"per_language": 10}, 1, "s", True)) == {
        "de": 10,
        "fr": 10,
        "sw": 8,
    }
    assert Counter(e.lang for e in sample_source(rows, {"ratio": 0.5}, 1, "s", True)) == {
        "de": 25,
        "fr": 25,
        "sw": 4,
    }
    assert len(sample_source(rows, {"size": 60}, 1, "s", balance=False)) == 60

    opts = BuildOptions(
        output="unused",
        test_data_dir=str(shared_data),
        decontaminate=["mgsm"],
        sources=[
            {"name": "align", "type": "qalign-question", "path": str(shared_data / "train-samples/qalign_gsmtrans_question"),
             "per_language": 20, "langs": ["de", "ja", "sw"]},
        ],
    )  # fmt: skip
    examples, stats = build_mixture(opts)
    assert stats["rows_per_language"] == {"de": 20, "ja": 20, "sw": 20}
    assert stats["sampled_out"] == {"align": 600 - 60 - stats["removed_untranslated"].get("align", 0)}


def test_build_api_refuses_existing_output(shared_data, tmp_path):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("results")
    opts = BuildOptions(output=str(out), sources=[{"type": "alpaca", "path": "x"}])
    with pytest.raises(SlamError, match="not empty and holds no slam run"):
        build(opts)
    # --overwrite replaces only an earlier slam data build, never a folder someone else wrote
    opts.overwrite = True
    with pytest.raises(SlamError, match="not empty and holds no slam run"):
        build(opts)
    assert (out / "keep.txt").read_text() == "results"


def test_inspect_renders_with_the_template(cli, shared_data, tmp_path):
    out = tmp_path / "mix"
    cli("data", "build", "configs/data/shared-sample.yaml", "--output", out, "--test-data-dir", shared_data)
    proc = cli(
        "data", "inspect", out / "train.jsonl", "-n", "2", "--lang", "de", "--kind", "alignment", "--json"
    )
    result = json.loads(proc.stdout)
    assert result["template"] == "alpaca@1" and len(result["examples"]) == 2
    ex = result["examples"][0]
    assert ex["lang"] == "de" and ex["kind"] == "alignment"
    assert ex["prompt"].startswith("Below is an instruction that describes a task.")
    assert "### Instruction:\nTranslate the following sentences from German to English." in ex["prompt"]
    assert ex["prompt"].endswith("### Response:") and ex["target"].startswith(" ")
    text = cli("data", "inspect", out, "--prompt", "llamafactory-default", "-n", "1").stdout
    assert "template llamafactory-default@2" in text and "Human: " in text and "\nAssistant: " in text
    proc = cli("data", "inspect", out, "--prompt", "nope", check=False)
    assert proc.returncode == 2 and "unknown prompt template 'nope'" in proc.stderr


def test_slam_mixture_config_with_local_stand_ins(shared_data, tmp_path):
    """configs/data/slam-mixture.yaml as shipped, with its hub source swapped for a MathOctopus-format
    file built from the real samples and its QAlign clone rebuilt from the samples' JSONL."""
    from slam_align.config import load_yaml_config
    from slam_align.data.prompts import get_prompt

    cfg = load_yaml_config(REPO / "configs/data/slam-mixture.yaml")
    qalign = tmp_path / "QAlign/data/gsmtrans/gsm8kinstruct_question"
    for lang in ("de", "zh"):
        pairs = [
            json.loads(x)
            for x in (shared_data / f"train-samples/qalign_gsmtrans_question/{lang}-en.first200.jsonl").open()
        ]
        (qalign / f"{lang}-en").mkdir(parents=True)
        (qalign / f"{lang}-en" / f"train.{lang}").write_text("".join(p["source"] + "\n" for p in pairs))
        (qalign / f"{lang}-en" / "train.en").write_text("".join(p["target"] + "\n" for p in pairs))
    en = [
        json.loads(x)
        for x in (shared_data / "train-samples/qalign_gsm8kinstruct_en/train.first300.jsonl").open()
    ]
    octopus = tmp_path / "MGSM8KInstruct_Parallel.json"
    template = get_prompt("mathoctopus")
    octopus.write_text(
        "".join(
            json.dumps({"prompt": template.render(r["question"], lang="en"), "chosen": r["answer"]}) + "\n"
            for r in en
        )
    )

    def local(spec):
        return (
            {**{k: v for k, v in spec.items() if k != "hub"}, "path": str(octopus)} if "hub" in spec else spec
        )

    sources = [local({**s, "answers": local(s["answers"])} if "answers" in s else s) for s in cfg["sources"]]
    for s in sources:  # the samples hold no bn/th; asking for a language the data lacks is an error
        if s["type"].startswith("qalign"):
            assert s["langs"] == ["bn", "th", "sw", "ja", "zh", "de", "fr", "ru", "es"]
            s["langs"] = ["de", "zh"]
    opts = BuildOptions(
        **{
            **cfg,
            "sources": sources,
            "test_data_dir": str(shared_data),
            "data_root": str(tmp_path),
            "output": "x",
        }
    )
    examples, stats = build_mixture(opts)
    assert set(stats["rows_per_source"]) == {
        "en-question-en-answer",
        "question-alignment",
        "x-question-en-answer",
    }
    assert stats["rows_per_language"]["en"] == 300
    assert set(stats["rows_per_language"]) == {"de", "zh", "en"}
    assert stats["rows_per_kind"]["alignment"] == sum(stats["rows_per_source"]["question-alignment"].values())
