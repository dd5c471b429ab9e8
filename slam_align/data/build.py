"""``slam data build``: a training mixture, deduplicated, decontaminated and sampled.

A mixture config (YAML; its keys are :class:`BuildOptions`) lists sources
(:mod:`slam_align.data.sources`). The build reads every source, keeps the mixture's
languages, removes duplicates, removes every example whose question is a test question
(:mod:`slam_align.data.decontaminate`), samples the sizes (seeded, balanced per
language), and writes the run directory at once: ``train.jsonl``, ``stats.json`` (also as
``metrics.json``), ``timing.json``, ``config.yaml``, ``run.json``, ``environment.json``
and ``README.md``.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slam_align.config import Options, option, options_to_dict
from slam_align.data.decontaminate import (
    TEST_SETS,
    example_questions,
    normalize_text,
    parse_test_set,
    test_question_index,
)
from slam_align.data.languages import PAPER_LANGS
from slam_align.data.sources import parse_langs_field, parse_sources, read_source
from slam_align.data.training import Example
from slam_align.errors import SlamError
from slam_align.io import (
    RUN_RECORD,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_yaml,
    check_run_dir,
    environment_versions,
    run_record,
    write_dir_atomically,
    write_run_readme,
)


@dataclass
class BuildOptions(Options):
    output: str = option(
        help="output directory (train.jsonl, stats.json, config.yaml, README.md)", aliases=["-o"]
    )
    sources: list[dict] = option(
        [], help="list of sources (set in the YAML config; see docs/data.md for the keys of a source)"
    )
    langs: list[str] = option(list(PAPER_LANGS), help="languages of the mixture; rows in others are dropped")
    seed: int = option(42, help="seed for sampling and shuffling")
    balance: bool = option(True, help="split a source's 'size' equally over its languages")
    dedup: bool = option(True, help="remove duplicate examples (same normalised question and output)")
    decontaminate: list[str] = option(
        list(TEST_SETS),
        help="test sets whose questions are removed from the mixture: benchmarks (every split: mgsm, msvamp, "
        "gsm8k, xcsqa) or BENCHMARK:SPLIT (xcsqa:test); empty: none",
    )
    test_data_dir: str | None = option(
        None, help="local benchmark files (a folder holding mgsm/ msvamp/ gsm8k/ X-CSQA/); default: the hub"
    )
    data_root: str = option("", help="base directory for relative paths in the config [default: current dir]")
    shuffle: bool = option(True, help="shuffle the final mixture (seeded)")
    name: str = option("mixture", help="name of the mixture (README title)")
    description: str = option("", help="free text for the README")
    overwrite: bool = option(False, help="replace an existing output directory")


# ---------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------


def _water_fill(total: int, available: dict[str, int]) -> dict[str, int]:
    """Split ``total`` equally over languages; a language short of rows gives its share to the rest."""
    quota, left, remaining = {}, dict(available), total
    for lang in sorted(left, key=lambda k: (left[k], k)):
        share = remaining // len(left)
        quota[lang] = min(left.pop(lang), share)
        remaining -= quota[lang]
    return quota


def sample_source(rows: list[Example], spec: dict, seed: int, name: str, balance: bool) -> list[Example]:
    rng = random.Random(f"{seed}/{name}")
    by_lang: dict[str, list[Example]] = defaultdict(list)
    for ex in rows:
        by_lang[ex.lang].append(ex)
    counts = {lang: len(v) for lang, v in by_lang.items()}
    if spec.get("per_language"):
        want = {lang: min(n, spec["per_language"]) for lang, n in counts.items()}
    elif spec.get("ratio"):
        want = {lang: round(n * spec["ratio"]) for lang, n in counts.items()}
    elif spec.get("size") and balance:
        want = _water_fill(spec["size"], counts)
    elif spec.get("size"):
        keep = set(rng.sample(range(len(rows)), min(spec["size"], len(rows))))
        return [ex for i, ex in enumerate(rows) if i in keep]
    else:
        return rows
    out = []
    for lang, group in by_lang.items():  # keep file order inside the sample
        keep = set(rng.sample(range(len(group)), want[lang]))
        out += [ex for i, ex in enumerate(group) if i in keep]
    return out


# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------


def _nested(counter: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for (a, b), n in sorted(counter.items()):
        out[a][b] = n
    return dict(out)


def _check_evaluation_sources(sources, decontaminate: list[str]) -> None:
    """A ``benchmark-question`` source reads evaluation questions on purpose; decontaminating
    against the same split would silently remove every row again: say so instead."""
    from slam_align.data.definitions import get_definition

    for src in sources:
        if src.type != "benchmark-question":
            continue
        definition = get_definition(src.spec["benchmark"])
        split = src.spec.get("split") or definition.eval_split
        for entry in decontaminate:
            name, splits = parse_test_set(entry)
            if name == definition.name and split in splits:
                raise SlamError(
                    f"{src.where}: reads {name} {split} questions, which 'decontaminate: {entry}' removes again; "
                    f"to tune on these evaluation questions on purpose, decontaminate against the other splits "
                    f"only (e.g. {name}:{next((s for s in definition.splits if s != split), split)}; docs/data.md)"
                )


def build_mixture(opts: BuildOptions) -> tuple[list[Example], dict]:
    """Read, filter, deduplicate, decontaminate and sample; return (examples, stats). Writes nothing."""
    root = Path(opts.data_root or ".").expanduser().resolve()
    sources = parse_sources(opts.sources)
    langs = parse_langs_field(opts.langs, "langs") or []
    if not langs:
        raise SlamError("langs: empty language list; expected codes like 'bn,th,sw,en'")
    test_dir = None
    if opts.test_data_dir:
        test_dir = Path(os.path.expanduser(os.path.expandvars(opts.test_data_dir)))
        test_dir = test_dir if test_dir.is_absolute() else root / test_dir
    _check_evaluation_sources(sources, opts.decontaminate)
    contamination = test_question_index(opts.decontaminate, test_dir) if opts.decontaminate else {}

    read, dropped_lang, dups, contaminated, sampled_out = (
        Counter(),
        Counter(),
        Counter(),
        Counter(),
        Counter(),
    )
    notes: Counter = Counter()
    by_test_set: Counter = Counter()
    seen: set[tuple[str, str]] = set()
    final: list[Example] = []
    requested: dict[str, Any] = {}
    for src in sources:
        src_langs = set(parse_langs_field(src.spec.get("langs"), src.where) or langs)
        kept = []
        for ex in read_source(src, root, notes, langs):
            read[(src.name, ex.lang)] += 1
            if ex.lang not in langs or ex.lang not in src_langs:
                dropped_lang[src.name] += 1
                continue
            key = (normalize_text(ex.query), normalize_text(ex.output))
            if opts.dedup and key in seen:
                dups[src.name] += 1
                continue
            seen.add(key)
            hit = next((contamination[q] for q in example_questions(ex) if q in contamination), None)
            if hit:
                contaminated[src.name] += 1
                by_test_set[hit] += 1
                continue
            kept.append(ex)
        sample = sample_source(kept, src.spec, opts.seed, src.name, opts.balance)
        sampled_out[src.name] = len(kept) - len(sample)
        requested[src.name] = {k: src.spec[k] for k in ("size", "ratio", "per_language") if src.spec.get(k)}
        final += sample
    if not final:
        raise SlamError(
            f"empty result after filtering: read {sum(read.values())} rows, dropped {sum(dropped_lang.values())} "
            f"in other languages (mixture langs: {','.join(langs)}), {sum(dups.values())} duplicates, "
            f"{sum(contaminated.values())} test questions"
        )
    if opts.shuffle:
        random.Random(opts.seed).shuffle(final)
    stats = {
        "rows": len(final),
        "rows_per_source": _nested(Counter((e.source, e.lang) for e in final)),
        "rows_per_language": dict(sorted(Counter(e.lang for e in final).items())),
        "rows_per_kind": dict(sorted(Counter(e.kind for e in final).items())),
        "read_per_source": _nested(read),
        "removed_duplicates": {"total": sum(dups.values()), "per_source": dict(dups)},
        "removed_contaminated": {
            "total": sum(contaminated.values()),
            "per_source": dict(contaminated),
            "per_test_set": dict(by_test_set),
        },
        "removed_untranslated": {name: n for (name, what), n in notes.items() if what == "untranslated"},
        "dropped_other_languages": dict(dropped_lang),
        "sampled_out": dict(sampled_out),
        "requested": requested,
        "test_sets": list(opts.decontaminate),
        "test_questions_indexed": len(contamination),
        "langs": langs,
        "seed": opts.seed,
    }
    return final, stats


def _readme(opts: BuildOptions, stats: dict, seconds: float) -> dict[str, str]:
    langs = stats["langs"]
    header = "| source | kind | " + " | ".join(langs) + " | total |"
    lines = [header, "|" + "---|" * (len(langs) + 3)]
    for name, per_lang in stats["rows_per_source"].items():
        kinds = next((s.get("kind") for s in opts.sources if s.get("name") == name), None) or "-"
        cells = [str(per_lang.get(lang, 0)) for lang in langs]
        lines.append(f"| {name} | {kinds} | " + " | ".join(cells) + f" | {sum(per_lang.values())} |")
    removed = stats["removed_contaminated"]
    return {
        "Summary": (opts.description + "\n\n" if opts.description else "")
        + f"{stats['rows']} examples in {len(stats['rows_per_language'])} languages, seed {opts.seed}, "
        f"built in {seconds:.1f} s. Files: `train.jsonl` (Alpaca fields plus `lang`, `source`, `kind`), "
        "`stats.json`, `config.yaml` (rebuild with `slam data build config.yaml --output NEW_DIR`).",
        "Rows per source and language": "\n".join(lines),
        "Cleaning": (
            f"- duplicates removed: {stats['removed_duplicates']['total']} {stats['removed_duplicates']['per_source']}\n"
            f"- test-set questions removed: {removed['total']} per source {removed['per_source']}, "
            f"per test set {removed['per_test_set']} (test sets: {', '.join(stats['test_sets']) or 'none'}; "
            f"{stats['test_questions_indexed']} normalised test questions; MGSM's English questions are "
            "GSM8K test rows 0-249)\n"
            f"- QAlign pairs whose 'translation' is the English question itself: {stats['removed_untranslated']}\n"
            f"- rows in other languages dropped: {stats['dropped_other_languages']}"
        ),
    }


OUTPUTS = ("train.jsonl", "stats.json")


def build(opts: BuildOptions) -> dict:
    """Build the mixture described by ``opts`` into ``opts.output``; return ``stats``."""
    out = Path(opts.output).expanduser()
    if not opts.output:
        raise SlamError("missing required option --output")
    check_run_dir(out, "data build", overwrite=opts.overwrite, outputs=OUTPUTS)
    start = time.perf_counter()
    examples, stats = build_mixture(opts)
    seconds = time.perf_counter() - start
    config = options_to_dict(opts)
    config["data_root"] = str(Path(opts.data_root or ".").expanduser().resolve())  # re-runnable from anywhere
    check_run_dir(out, "data build", overwrite=opts.overwrite, outputs=OUTPUTS)  # again: time has passed
    write_dir_atomically(
        out,
        {
            "train.jsonl": lambda p: atomic_write_jsonl(p, (e.to_dict() for e in examples)),
            "stats.json": lambda p: atomic_write_json(p, stats),
            # Every run directory has metrics.json; for a data build the metrics are its stats.
            "metrics.json": lambda p: atomic_write_json(p, stats),
            "config.yaml": lambda p: atomic_write_yaml(p, config),
            "timing.json": lambda p: atomic_write_json(p, {"build_seconds": round(seconds, 3)}),
            "environment.json": lambda p: atomic_write_json(p, environment_versions()),
            RUN_RECORD: lambda p: atomic_write_json(p, run_record("data build", "complete")),
            "README.md": lambda p: write_run_readme(
                p, f"Training mixture: {opts.name}", _readme(opts, stats, seconds)
            ),
        },
        replace=out.exists(),
    )
    return stats


def build_cli(opts: BuildOptions) -> int:
    stats = build(opts)
    removed = stats["removed_contaminated"]["total"]
    print(
        f"wrote {stats['rows']} examples to {Path(opts.output) / 'train.jsonl'} "
        f"({len(stats['rows_per_language'])} languages; removed {stats['removed_duplicates']['total']} duplicates "
        f"and {removed} test-set questions)"
    )
    for name, per_lang in stats["rows_per_source"].items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in per_lang.items()))
    return 0
