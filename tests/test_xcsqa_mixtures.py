"""X-CSQA mixture sources on files in their real shapes: CommonsenseQA / X-CSQA rows with answers,
FLORES-200 / FLORES+ parallel sentences, X-CSQA's own parallel questions; the shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import xcsqa_data as X

from slam_align.config import load_yaml_config
from slam_align.data import training
from slam_align.data.build import BuildOptions, build_mixture
from slam_align.data.definitions import get_definition
from slam_align.data.sources import parse_sources
from slam_align.data.training import ALIGNMENT, RESPONSE, read_flores, read_multiple_choice
from slam_align.errors import SlamError

REPO = Path(__file__).resolve().parents[1]
NON_EN = ["zh", "de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "ar", "vi", "hi", "sw", "ur"]


@pytest.fixture
def files(tmp_path):
    """X-CSQA (distributed layout), CommonsenseQA train rows (hub shape, as a local JSONL), FLORES-200."""
    return {
        "xcsqa": X.write_distributed(tmp_path / "X-CSR_datasets"),
        "csqa": X.write_jsonl(tmp_path / "csqa-train.jsonl", X.csqa_hub_rows()),
        "flores": X.write_flores_distributed(tmp_path),
    }


def test_multiple_choice_rows_render_as_the_benchmark_shows_them(files, tmp_path):
    examples = read_multiple_choice(files["csqa"], benchmark="xcsqa", source="csqa")
    assert len(examples) == 4 and {(e.lang, e.kind, e.source) for e in examples} == {("en", RESPONSE, "csqa")}
    prompt = get_definition("xcsqa").prompt
    first = X.CSQA_TRAIN[0]
    assert examples[0].instruction == prompt.render(first[1], tuple(zip(X.LABELS, first[3])))
    assert examples[0].instruction.endswith("Answer Choices: (A) oven (B) fridge (C) desk (D) garden (E) car")
    assert [e.output for e in examples] == ["The answer is (B).", "The answer is (A).", "The answer is (C).",
                                            "The answer is (D)."]  # fmt: skip
    # X-CSQA's own rows (question.stem, a list of {label, text}) read the same way
    xcsqa_rows = read_multiple_choice(files["xcsqa"] / "X-CSQA" / "en" / "dev.jsonl")
    assert xcsqa_rows[0].output == "The answer is (D)." and xcsqa_rows[0].instruction.startswith(
        X.QUESTIONS["en"][0][0]
    )
    # the hub path: datasets returns the same rows
    via_hub = read_multiple_choice(
        hub="json", data_files=str(files["csqa"]), split="train", cache_dir=str(tmp_path / "c"), source="csqa"
    )
    assert via_hub == examples


def test_multiple_choice_errors_name_file_line_field(tmp_path):
    rows = X.csqa_hub_rows()
    rows[1]["answerKey"] = "Z"
    path = X.write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(SlamError, match=r"bad.jsonl: line 2: field 'answerKey': not a choice label: 'Z'"):
        read_multiple_choice(path)
    with pytest.raises(SlamError, match="benchmark 'mgsm' is not a choice benchmark"):
        read_multiple_choice(path, benchmark="mgsm")


def test_flores_local_and_hub(files, tmp_path, monkeypatch):
    pairs = read_flores(files["flores"], langs=["de", "zh", "ja", "sw"])
    assert [(p.lang, p.english) for p in pairs[:2]] == [("de", X.FLORES_SENTENCES["eng_Latn"][0]),
                                                        ("de", X.FLORES_SENTENCES["eng_Latn"][1])]  # fmt: skip
    assert pairs[2].text == X.FLORES_SENTENCES["cmn_Hans"][0]  # zho_Hans.dev in the FLORES-200 files
    assert read_flores(files["flores"] / "dev", langs=["de"]) == pairs[:2]  # the split folder itself

    # FLORES+ on the hub: one config per code (Chinese cmn_Hans), field "text", paired on id
    hub_files = {
        code: X.write_jsonl(tmp_path / f"fp-{code}.jsonl", X.flores_plus_rows(code))
        for code in X.FLORES_SENTENCES
    }
    real = training.iter_hub_rows

    def local_hub(hub, split="train", name=None, **kw):
        assert (hub, split) == ("openlanguagedata/flores_plus", "dev")
        return real("json", split="train", data_files=str(hub_files[name]), cache_dir=str(tmp_path / "c"))

    monkeypatch.setattr(training, "iter_hub_rows", local_hub)
    via_hub = read_flores(hub="openlanguagedata/flores_plus", langs=["de", "zh", "ja", "sw"])
    assert [(p.lang, p.text, p.english) for p in via_hub] == [(p.lang, p.text, p.english) for p in pairs]


def test_flores_errors(files, tmp_path):
    (files["flores"] / "dev" / "deu_Latn.dev").write_text("only one line\n", encoding="utf-8")
    with pytest.raises(
        SlamError,
        match=r"deu_Latn.dev: 1 lines but .*eng_Latn.dev has 2; parallel files must be line-aligned",
    ):
        read_flores(files["flores"], langs=["de"])
    with pytest.raises(SlamError, match=r"no ita_Latn.dev \(FLORES file for 'it'\)"):
        read_flores(files["flores"], langs=["it"])
    with pytest.raises(SlamError, match="no FLORES-200 files"):
        read_flores(tmp_path / "X-CSR_datasets", langs=["de"])
    with pytest.raises(SlamError, match="flores: give 'langs'"):
        read_flores(files["flores"])


def _local(cfg: dict, files: dict) -> list[dict]:
    """The shipped sources with their hub ids swapped for the local files of the same format."""
    out = []
    for spec in cfg["sources"]:
        spec = {k: v for k, v in spec.items() if k not in ("hub", "split")}
        if spec["type"] == "multiple-choice":
            spec["path"] = str(files["csqa"])
        elif spec["type"] == "flores":
            assert spec["langs"] == NON_EN
            spec.update(path=str(files["flores"]), langs=["de", "zh", "ja", "sw"])
        elif spec["type"] == "benchmark-question":
            assert spec["langs"] == NON_EN
            spec["path"] = str(files["xcsqa"])
        out.append(spec)
    return out


def test_shipped_xcsqa_mixture_with_local_stand_ins(files):
    cfg = load_yaml_config(REPO / "configs/data/xcsqa-mixture.yaml")
    assert cfg["langs"] == list(X.LANGS) and cfg["decontaminate"] == ["xcsqa"]
    assert [(s["type"], s.get("hub")) for s in cfg["sources"]] == [
        ("multiple-choice", "tau/commonsense_qa"), ("flores", "openlanguagedata/flores_plus"),
    ]  # fmt: skip
    opts = BuildOptions(
        **{**cfg, "sources": _local(cfg, files), "test_data_dir": str(files["xcsqa"]), "output": "x"}
    )
    examples, stats = build_mixture(opts)
    assert stats["rows_per_source"] == {
        "csqa-en": {"en": 3},
        "flores-alignment": {"de": 2, "ja": 2, "sw": 2, "zh": 2},
    }
    # the CommonsenseQA row that is X-CSQA's English validation question is removed
    assert stats["removed_contaminated"] == {
        "total": 1,
        "per_source": {"csqa-en": 1},
        "per_test_set": {"xcsqa": 1},
    }
    assert stats["test_questions_indexed"] > 16 * 3
    de = next(e for e in examples if e.lang == "de")
    assert de.kind == ALIGNMENT and de.instruction.startswith(
        "Translate the following sentences from German to English. "
    )
    assert de.output in X.FLORES_SENTENCES["eng_Latn"]


def test_dev_alignment_mixture_tunes_on_evaluation_questions_only_when_told(files):
    cfg = load_yaml_config(REPO / "configs/data/xcsqa-mixture-dev-alignment.yaml")
    assert cfg["decontaminate"] == ["xcsqa:test"]
    sources = _local(cfg, files)
    opts = BuildOptions(**{**cfg, "sources": sources, "test_data_dir": str(files["xcsqa"]), "output": "x"})
    examples, stats = build_mixture(opts)
    assert stats["rows_per_source"]["xcsqa-dev-alignment"] == {lang: 2 for lang in NON_EN}
    ja = next(e for e in examples if e.source == "xcsqa-dev-alignment" and e.lang == "ja")
    assert ja.instruction.startswith("Translate the following sentences from Japanese to English. ")
    assert ja.output.startswith(
        X.QUESTIONS["en"][0][0] + "\nAnswer Choices: (A) headaches"
    ) or ja.output.startswith(X.QUESTIONS["en"][1][0])
    # test questions are still removed; the validation questions are the point of this mixture
    assert stats["removed_contaminated"]["per_test_set"] == {}
    with pytest.raises(SlamError, match=r"sources\[2\] \(xcsqa-dev-alignment\): reads xcsqa validation questions, "
                                        r"which 'decontaminate: xcsqa' removes again; .* xcsqa:test"):  # fmt: skip
        build_mixture(BuildOptions(**{**cfg, "sources": sources, "decontaminate": ["xcsqa"], "output": "x"}))


def test_source_schema_errors():
    with pytest.raises(SlamError, match=r"sources\[0\] \(b\): missing field 'benchmark'"):
        parse_sources([{"name": "b", "type": "benchmark-question"}])
    with pytest.raises(SlamError, match=r"sources\[0\] \(f\): missing field 'path'"):
        parse_sources([{"name": "f", "type": "flores"}])
    assert (
        parse_sources([{"type": "flores", "hub": "facebook/flores", "codes": {"zh": "zho_Hant"}}])[0].type
        == "flores"
    )
