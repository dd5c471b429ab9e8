"""The synthetic world: deterministic, and its languages differ the way the docs say."""

from __future__ import annotations

import dataclasses
import re

import pytest

from slam_align.synth.pretrain import PretrainSettings, cache_key, default_cache_dir
from slam_align.synth.world import (
    ADD_VERBS,
    SYN_LANGS,
    World,
    WorldSettings,
    quick_settings,
)

SMALL = dataclasses.replace(
    quick_settings(0), pretrain_en=200, pretrain_foreign=20, align=10, reasoning=50, identify=6, test=12
)


@pytest.fixture(scope="module")
def world() -> World:
    return World(SMALL)


def test_same_settings_same_world_different_seed_different_world(world):
    again = World(SMALL)
    assert again.benchmark_rows("test") == world.benchmark_rows("test")
    assert again.alignment_rows() == world.alignment_rows()
    assert again.pretraining_documents() == world.pretraining_documents()
    other = World(dataclasses.replace(SMALL, seed=1))
    assert other.languages["syn-de"].lexicon != world.languages["syn-de"].lexicon
    assert other.benchmark_rows("test") != world.benchmark_rows("test")


def test_english_problems_and_chain_of_thought(world):
    for p in world.splits()["test"]:
        cot = p.chain_of_thought()
        assert cot.endswith(f"The answer is {p.answer}.")
        # Every equation is right and the chain starts from the problem's first number.
        equations = re.findall(r"(\d+) ([+-]) (\d+) = (\d+)\.", cot)
        assert len(equations) == len(p.steps) >= 1
        assert int(equations[0][0]) == p.start
        for a, op, b, c in equations:
            assert (int(a) + int(b) if op == "+" else int(a) - int(b)) == int(c)
            assert 0 <= int(c) <= SMALL.max_total
        assert p.english().startswith(f"{p.name} has {p.start} {p.obj}.")
        assert p.english().endswith("have now?")
    steps = {len(p.steps) for p in world.splits()["test"]}
    assert steps == set(range(1, SMALL.max_steps + 1))


def test_held_out_problems_never_in_training_sets(world):
    held = {p.english() for split in ("test", "identify") for p in world.splits()[split]}
    assert len(held) == SMALL.test + SMALL.identify  # distinct
    for split in ("align", "reasoning", "pretrain_en", "pretrain_foreign", "parallel", "code_switched"):
        assert not held & {p.english() for p in world.splits()[split]}, split


def test_numerals_scripts_and_names(world):
    p = next(q for q in world.splits()["test"] if q.start >= 2)
    bn, th = world.render(p, "syn-bn"), world.render(p, "syn-th")
    assert re.search("[০-৯]", bn) and not re.search("[0-9]", bn)
    assert re.search("[๐-๙]", th) and not re.search("[0-9]", th)
    assert str(p.start) in world.render(p, "syn-de").split()
    assert re.search("[\u0400-\u04ff]", world.render(p, "syn-ru"))
    assert re.search("[\u3040-\u309f]", world.render(p, "syn-ja"))
    assert re.search("[\u4e00-\u9fff]", world.render(p, "syn-zh"))
    assert re.search("[\u0e00-\u0e7f]", th) and re.search("[\u0980-\u09ff]", bn)
    assert world.render(p, "syn-fr").startswith(p.name)  # Latin script keeps names
    assert not world.render(p, "syn-ru").startswith(p.name)  # others transliterate
    assert world.languages["syn-bn"].numeral(17) == "১৭"
    assert world.languages["syn-th"].numeral(20) == "๒๐"


def test_word_orders(world):
    p = world.splits()["test"][0]
    for lang in SYN_LANGS:
        lang_obj = world.languages[lang]
        lex = lang_obj.lexicon
        first = lang_obj.sentences(p)[0].rstrip(".。।?？").split()
        if lang in ("syn-bn", "syn-ja", "syn-de"):
            assert first[-1] == lex["has"], lang  # verb-final (SOV)
        else:
            assert first[1] == lex["has"], lang  # SVO
        amount = first[1:-1] if lang in ("syn-bn", "syn-ja", "syn-de") else first[2:]
        noun_first = lang in ("syn-th", "syn-sw", "syn-ja")
        assert (amount[0] == lex[p.obj]) == noun_first, lang
    # English fronts the question phrase; zh keeps it in place ("Tom now has how-many ...").
    zh_question = world.languages["syn-zh"].sentences(p)[-1]
    assert zh_question.split()[0] == world.languages["syn-zh"].lexicon[p.name]
    assert world.render(p, "en").split(". ")[-1].startswith("How many")


def test_es_fr_de_share_roots_others_do_not(world):
    lex = {lang: world.languages[lang].lexicon for lang in SYN_LANGS}
    for concept in ["apples", "pens", *ADD_VERBS]:
        roots = {lex[lang][concept].lower()[:4] for lang in ("syn-es", "syn-fr", "syn-de")}
        assert len(roots) == 1, (concept, roots)
        assert lex["syn-es"][concept] != lex["syn-fr"][concept] != lex["syn-de"][concept]
        assert lex["syn-sw"][concept].lower()[:4] not in roots
    for lang in SYN_LANGS:  # one word per concept: no two concepts share a word
        assert len(set(lex[lang].values())) == len(lex[lang])


def test_data_rows_load_through_the_toolkit(world, tmp_path):
    from slam_align.data.benchmarks import load_benchmark
    from slam_align.data.training import read_alpaca
    from slam_align.io import atomic_write_jsonl

    atomic_write_jsonl(tmp_path / "heldout.jsonl", world.benchmark_rows("test"))
    problems = load_benchmark(f"jsonl:{tmp_path / 'heldout.jsonl'}", ["syn-bn", "en"])
    assert {p.lang for p in problems} == {"syn-bn", "en"}
    bn = [p for p in problems if p.lang == "syn-bn"]
    assert len(bn) == SMALL.test and bn[0].answer == world.splits()["test"][0].answer
    assert bn[0].question_en == world.splits()["test"][0].english()
    translation, response = world.alignment_rows()
    atomic_write_jsonl(tmp_path / "mix.jsonl", translation + response)
    examples = read_alpaca(tmp_path / "mix.jsonl")
    assert len(examples) == 2 * SMALL.align * len(SYN_LANGS)
    assert {e.kind for e in examples} == {"alignment", "response"}
    assert all(e.output.endswith((".", "?")) for e in examples)


def test_cache_dir_and_key(monkeypatch, tmp_path):
    monkeypatch.delenv("SLAM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "slam-align"
    monkeypatch.setenv("SLAM_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert default_cache_dir(tmp_path / "flag") == tmp_path / "flag"
    ps = PretrainSettings()
    assert cache_key(SMALL, ps) == cache_key(World(SMALL).settings, PretrainSettings())
    assert cache_key(SMALL, ps) != cache_key(dataclasses.replace(SMALL, seed=3), ps)
    assert cache_key(SMALL, ps) != cache_key(SMALL, dataclasses.replace(ps, steps=7))
    assert WorldSettings().fingerprint() != SMALL.fingerprint()


def test_pretraining_follows_each_languages_exposure():
    """English problems with answers; per language, code-switched problems, monolingual text and
    parallel sentences in proportion to the language's exposure (Llama 2's shares)."""
    settings = dataclasses.replace(SMALL, pretrain_foreign=40, parallel_sentences=20, code_switched=40)
    world = World(settings)
    problems, text = world.pretraining_documents()
    english = [q for q, _ in problems if "How many" in q]
    assert len(english) == SMALL.pretrain_en
    assert all(a.endswith(".") and "The answer is" in a for _, a in problems)
    assert not any("The answer is" in t for t in text)
    pairs = [t for t in text if " = " in t]
    assert pairs and all(t.split(" = ")[1][0].isupper() for t in pairs)
    counts = dict(zip(settings.langs, settings.per_language(40)))
    assert counts["syn-de"] == 40 and counts["syn-ja"] < counts["syn-es"] < counts["syn-de"]
    assert counts["syn-bn"] == counts["syn-th"] == counts["syn-sw"] == 1
    assert len(text) - len(pairs) == sum(counts.values())
    assert len(problems) - len(english) == sum(counts.values())
    # A code-switched problem is a question in the language worked in English.
    thai = [q for q, a in problems if any("\u0e00" <= ch <= "\u0e7f" for ch in q)]
    assert len(thai) == counts["syn-th"]


def test_reasoning_set_in_the_papers_proportion():
    from slam_align.synth.world import METAMATHQA_RATIO, full_settings

    for s in (quick_settings(0), full_settings(0)):
        mixture = 2 * len(s.langs) * s.align
        assert s.reasoning == pytest.approx(METAMATHQA_RATIO * mixture, abs=1)
        assert s.test >= 200


def test_report_claims_and_seeds_arithmetic():
    """Paired intervals, verdicts and the spread over seeds, on hand-made verdicts."""
    from slam_align.synth import report

    langs = ["syn-de", "syn-bn"]
    ones = {x: dict.fromkeys(range(40), True) for x in langs}
    half = {x: {i: i % 2 == 0 for i in range(40)} for x in langs}
    same, interval = report.paired_difference(half, half, langs)
    assert same == 0.0 and interval == [0.0, 0.0]
    diff, interval = report.paired_difference(ones, half, langs)
    assert diff == pytest.approx(0.5) and 0.3 < interval[0] <= 0.5 <= interval[1] < 0.7
    assert report._verdict(interval) == "holds"
    assert report._verdict([-x for x in reversed(interval)]) == "does not hold"
    assert report._verdict([-0.02, 0.03]) == "within noise"
    assert report._verdict([-0.04, -0.01], margin=0.05) == "holds"

    def run(avg, en):
        acc = {"syn-de": avg, "syn-bn": avg, "en": en}
        return {
            "methods": {
                "slam": {
                    "accuracy": acc,
                    "average": 0.0,
                    "average_non_en": avg,
                    "ci95": {},
                    "trainable_fraction": 0.1,
                    "train_seconds": 1.0,
                }
            }
        }

    spread = report.across_seeds({0: run(0.2, 0.9), 1: run(0.4, 1.0)})["slam"]
    assert spread["average_non_en"]["mean"] == pytest.approx(0.3)
    assert spread["average_non_en"]["std"] == pytest.approx(0.1414, abs=1e-4)
    assert spread["en"]["per_seed"] == {"0": 0.9, "1": 1.0}
    calibration = report.check_calibration({"accuracy": {"en": 0.9, "syn-de": 0.6, "syn-bn": 0.1}})
    assert [t["held"] for t in calibration] == [True, True, True, True]
    calibration = report.check_calibration({"accuracy": {"en": 0.9, "syn-de": 0.3, "syn-bn": 0.3}})
    assert [t["held"] for t in calibration] == [True, False, False, False]
