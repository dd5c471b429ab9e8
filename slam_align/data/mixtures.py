"""Training mixtures: ``slam data build`` and ``slam data inspect``.

A mixture config (YAML; its keys are :class:`BuildOptions`) lists sources, each with a
``type`` (a reader in :mod:`slam_align.data.training`), a local ``path`` or a ``hub`` id,
languages, a size (``size`` / ``per_language`` / ``ratio``) and a ``kind`` (``alignment``:
question in X -> English question; ``response``: question -> chain-of-thought answer).
The build reads every source, keeps the mixture's languages, removes duplicates, removes
every example whose question is a test question (MGSM in all languages, MSVAMP, GSM8K
test; compared after normalisation), samples the sizes (seeded, balanced per language),
and writes ``train.jsonl``, ``stats.json`` (also as ``metrics.json``), ``timing.json``,
``config.yaml`` and ``README.md`` at once.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slam_align.config import option, options_to_dict
from slam_align.data.languages import PAPER_LANGS, language_name
from slam_align.data.training import (
    ALIGNMENT,
    RESPONSE,
    Example,
    read_alpaca,
    read_gsm8kinstruct,
    read_mathoctopus,
    read_metamath,
    read_qalign_pairs,
    translation_instruction,
)
from slam_align.errors import SlamError
from slam_align.io import (
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_yaml,
    dumps_json,
    write_run_readme,
)

TEST_SETS = ("mgsm", "msvamp", "gsm8k")


@dataclass
class BuildOptions:
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
        list(TEST_SETS), help="test sets whose questions are removed from the mixture (empty: none)"
    )
    test_data_dir: str | None = option(
        None, help="local benchmark files (a folder holding mgsm/ msvamp/ gsm8k/); default: the hub"
    )
    data_root: str = option("", help="base directory for relative paths in the config [default: current dir]")
    shuffle: bool = option(True, help="shuffle the final mixture (seeded)")
    name: str = option("mixture", help="name of the mixture (README title)")
    description: str = option("", help="free text for the README")
    overwrite: bool = option(False, help="replace an existing output directory")


@dataclass
class InspectOptions:
    file: str = option(
        help="a train.jsonl (or a 'slam data build' directory, or any Alpaca JSON/JSONL)", positional=True
    )
    prompt: str = option("alpaca", help="prompt template name (slam_align.data.prompts)")
    n: int = option(3, help="how many examples to show", aliases=["-n"])
    lang: str | None = option(None, help="only examples in this language")
    kind: str | None = option(None, help="only examples of this kind (alignment / response)")
    random: bool = option(False, help="pick examples at random (seeded) instead of the first ones")
    seed: int = option(0, help="seed for --random")
    tokenizer: str | None = option(
        None, help="tokenizer (for the 'chat' template): hub id or local directory"
    )
    json: bool = option(False, help="print one JSON object instead of text")


# ---------------------------------------------------------------------------------------
# Normalised text: what "the same question" means
# ---------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")
_TRANSLATE_PREFIX = re.compile(r"^Translate the following sentences from [^.]+? to [^.]+?\.\s*")


def normalize_text(text: str) -> str:
    """Case, punctuation, spacing and digit script do not matter: ``"on monday . she"`` equals
    ``"On Monday. She"`` and ``১৮`` equals ``18``."""
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():  # native digits (Bengali, Thai, ...) -> ASCII
        text = "".join(
            str(unicodedata.digit(ch)) if ch.isdigit() and unicodedata.digit(ch, None) is not None else ch
            for ch in text
        )
    return " ".join(_WORD.findall(text.casefold()))


def example_questions(ex: Example) -> set[str]:
    """Normalised texts of ``ex`` that are questions: the instruction (with QAlign's translation
    prefix removed), its lines, the input, and for alignment rows the English question (output)."""
    texts = [ex.instruction, _TRANSLATE_PREFIX.sub("", ex.instruction), ex.input]
    texts += ex.instruction.splitlines()
    if ex.kind == ALIGNMENT:
        texts.append(ex.output)
    return {n for n in map(normalize_text, texts) if n}


def test_question_index(names: Iterable[str], data_dir: str | Path | None) -> dict[str, str]:
    """normalised question -> test set, over every language of each benchmark (and its English question)."""
    from slam_align.data.benchmarks import load_benchmark

    index: dict[str, str] = {}
    for name in names:
        if name not in TEST_SETS:
            raise SlamError(
                f"decontaminate: unknown test set '{name}'; expected some of: {', '.join(TEST_SETS)}"
            )
        try:
            problems = load_benchmark(name, langs="all", data_dir=data_dir)
        except SlamError as e:  # name the build's own flag in the hint
            raise SlamError(f"decontaminate: {str(e).replace('--data-dir', '--test-data-dir')}") from None
        for p in problems:
            for q in (p.question, p.question_en):
                if q:
                    index.setdefault(normalize_text(q), name)
    return index


# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------

SOURCE_TYPES = (
    "alpaca",
    "qalign-question",
    "qalign-question-answer",
    "mathoctopus",
    "metamathqa",
    "gsm8kinstruct",
)
_SOURCE_KEYS = {
    "name", "type", "path", "hub", "split", "langs", "lang", "kind", "size", "ratio", "per_language",
    "field_map", "types", "answers", "keep_untranslated",
}  # fmt: skip
_DEFAULT_KIND = {"qalign-question": ALIGNMENT}


@dataclass
class Source:
    name: str
    type: str
    spec: dict[str, Any]
    where: str  # "sources[2] (x-answers)" for error messages


def parse_sources(raw: list[dict]) -> list[Source]:
    if not raw:
        raise SlamError("config: no sources; list at least one under 'sources:'")
    out, names = [], set()
    for i, spec in enumerate(raw):
        where = f"sources[{i}]"
        if not isinstance(spec, dict):
            raise SlamError(
                f"{where}: expected a mapping (type, path or hub, ...), got {type(spec).__name__}"
            )
        unknown = sorted(set(spec) - _SOURCE_KEYS)
        if unknown:
            raise SlamError(
                f"{where}: unknown key '{unknown[0]}'; known keys: {', '.join(sorted(_SOURCE_KEYS))}"
            )
        stype = spec.get("type")
        if stype not in SOURCE_TYPES:
            raise SlamError(f"{where}: field 'type' is {stype!r}; expected one of: {', '.join(SOURCE_TYPES)}")
        name = str(spec.get("name") or f"{stype}-{i}")
        if name in names:
            raise SlamError(f"{where}: duplicate source name '{name}'")
        names.add(name)
        where = f"{where} ({name})"
        if stype not in ("metamathqa", "mathoctopus") and not (spec.get("path") or spec.get("hub")):
            raise SlamError(f"{where}: missing field 'path'")
        if spec.get("path") and spec.get("hub"):
            raise SlamError(f"{where}: give 'path' or 'hub', not both")
        if spec.get("kind", _DEFAULT_KIND.get(stype, RESPONSE)) not in (ALIGNMENT, RESPONSE):
            raise SlamError(f"{where}: field 'kind' is {spec['kind']!r}; expected alignment or response")
        if stype == "qalign-question-answer" and not isinstance(spec.get("answers"), dict):
            raise SlamError(f"{where}: missing field 'answers' (a source of English question -> answer rows)")
        _check_sizes(spec, where)
        out.append(Source(name, stype, spec, where))
    return out


def _check_sizes(spec: dict, where: str) -> None:
    given = [k for k in ("size", "ratio", "per_language") if spec.get(k) is not None]
    if len(given) > 1:
        raise SlamError(f"{where}: give one of size, ratio, per_language (got {', '.join(given)})")
    for key in ("size", "per_language"):
        v = spec.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise SlamError(f"{where}: field '{key}' must be a positive integer, got {v!r}")
    r = spec.get("ratio")
    if r is not None and (isinstance(r, bool) or not isinstance(r, int | float) or not 0 < r <= 1):
        raise SlamError(f"{where}: field 'ratio' must be a number in (0, 1], got {r!r}")


def _langs(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = [str(v).strip() for v in items if str(v).strip()]
    for code in out:
        try:
            language_name(code)
        except SlamError as e:
            raise SlamError(f"{where}: field 'langs': {e}") from None
    return out


def _path(spec: dict, root: Path) -> Path | None:
    if not spec.get("path"):
        return None
    p = Path(os.path.expanduser(os.path.expandvars(str(spec["path"]))))
    return p if p.is_absolute() else root / p


def read_source(src: Source, root: Path, notes: Counter | None = None) -> list[Example]:
    """All rows of one source (before language filtering, dedup and sampling).

    ``notes[(source, "untranslated")]`` counts QAlign pairs dropped because the "translation"
    is the English question itself (the shared samples hold 20 such pairs, 16 of them in fr).
    """
    notes = Counter() if notes is None else notes
    spec, path, hub = src.spec, _path(src.spec, root), src.spec.get("hub")
    langs = _langs(spec.get("langs"), src.where)
    kind = spec.get("kind", _DEFAULT_KIND.get(src.type, RESPONSE))
    try:
        rows = _read(src.type, spec, path, hub, langs, root, src.name, notes)
    except SlamError as e:
        raise SlamError(f"{src.where}: {e}") from None
    for ex in rows:
        ex.source = src.name
        # Alpaca files may carry their own per-row kind; an explicit source kind wins.
        if spec.get("kind") or src.type != "alpaca" or not ex.kind:
            ex.kind = kind
    return rows


def _qalign_pairs(spec, path, langs, name, notes):
    pairs = read_qalign_pairs(path, langs)
    if spec.get("keep_untranslated"):
        return pairs
    kept = [p for p in pairs if normalize_text(p.text) != normalize_text(p.english)]
    notes[(name, "untranslated")] += len(pairs) - len(kept)
    return kept


def _read(stype, spec, path, hub, langs, root, name, notes) -> list[Example]:
    if stype == "alpaca":
        if path is None:
            raise SlamError("type alpaca needs a local 'path'")
        return read_alpaca(path, spec.get("field_map"), lang=spec.get("lang"))
    if stype == "qalign-question":
        if path is None:
            raise SlamError("QAlign data is not on the hub; give 'path' (a clone of NJUNLP/QAlign's data)")
        return [
            Example(
                translation_instruction(p.lang) + p.text, p.english, lang=p.lang, source=name, kind=ALIGNMENT
            )
            for p in _qalign_pairs(spec, path, langs, name, notes)
        ]
    if stype == "mathoctopus":
        return read_mathoctopus(path, hub, langs, source=name)
    if stype == "metamathqa":
        return read_metamath(path, hub, types=spec.get("types"), source=name)
    if stype == "gsm8kinstruct":
        return read_gsm8kinstruct(path, lang=spec.get("lang", "en"), source=name, hub=hub)
    return _join_answers(spec, path, langs, root, name, notes)


def _join_answers(spec, path, langs, root, name, notes) -> list[Example]:
    """X question -> English answer: QAlign pairs (X question, English question) joined with an
    English question -> answer source on the normalised English question."""
    if path is None:
        raise SlamError("type qalign-question-answer needs 'path' (QAlign question-translation data)")
    answers_src = parse_sources([{"name": f"{name}.answers", **spec["answers"]}])[0]
    answers: dict[str, str] = {}
    for ex in read_source(answers_src, root):
        if ex.lang == "en":
            answers.setdefault(normalize_text(ex.query), ex.output)
    out = []
    for pair in _qalign_pairs(spec, path, langs, name, notes):
        answer = answers.get(normalize_text(pair.english))
        if answer is not None:
            out.append(Example(pair.text, answer, lang=pair.lang, source=name, kind=RESPONSE))
    if not out:
        raise SlamError(f"{path}: no English question matched a question of 'answers' ({answers_src.where})")
    return out


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


def build_mixture(opts: BuildOptions) -> tuple[list[Example], dict]:
    """Read, filter, deduplicate, decontaminate and sample; return (examples, stats). Writes nothing."""
    root = Path(opts.data_root or ".").expanduser().resolve()
    sources = parse_sources(opts.sources)
    langs = _langs(opts.langs, "langs") or []
    if not langs:
        raise SlamError("langs: empty language list; expected codes like 'bn,th,sw,en'")
    test_dir = None
    if opts.test_data_dir:
        test_dir = Path(os.path.expanduser(os.path.expandvars(opts.test_data_dir)))
        test_dir = test_dir if test_dir.is_absolute() else root / test_dir
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
        src_langs = set(_langs(src.spec.get("langs"), src.where) or langs)
        kept = []
        for ex in read_source(src, root, notes):
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


def _write_atomically(out: Path, files: dict[str, Any], overwrite: bool) -> None:
    """Write every file into a temporary sibling directory, then rename it into place."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for name, write in files.items():
            write(tmp / name)
        # mkdtemp/mkstemp create private (0700/0600) entries; a dataset is for sharing.
        umask = os.umask(0)
        os.umask(umask)
        for f in tmp.iterdir():
            f.chmod(0o666 & ~umask)
        tmp.chmod(0o777 & ~umask)
        if out.exists():
            if not overwrite:  # checked again: someone may have created it meanwhile
                raise SlamError(f"{out}: output exists; pass --overwrite to replace it")
            trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, trash / out.name)
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def build(opts: BuildOptions) -> dict:
    """Build the mixture described by ``opts`` into ``opts.output``; return ``stats``."""
    out = Path(opts.output).expanduser()
    if not opts.output:
        raise SlamError("missing required option --output")
    if out.exists() and not opts.overwrite:
        raise SlamError(f"{out}: output exists; pass --overwrite to replace it")
    if out.exists() and not out.is_dir():
        raise SlamError(f"{out}: output path exists and is not a directory")
    start = time.perf_counter()
    examples, stats = build_mixture(opts)
    seconds = time.perf_counter() - start
    config = options_to_dict(opts)
    config["data_root"] = str(Path(opts.data_root or ".").expanduser().resolve())  # re-runnable from anywhere
    _write_atomically(
        out,
        {
            "train.jsonl": lambda p: atomic_write_jsonl(p, (e.to_dict() for e in examples)),
            "stats.json": lambda p: atomic_write_json(p, stats),
            # Every run directory has metrics.json; for a data build the metrics are its stats.
            "metrics.json": lambda p: atomic_write_json(p, stats),
            "config.yaml": lambda p: atomic_write_yaml(p, config),
            "timing.json": lambda p: atomic_write_json(p, {"build_seconds": round(seconds, 3)}),
            "README.md": lambda p: write_run_readme(
                p, f"Training mixture: {opts.name}", _readme(opts, stats, seconds)
            ),
        },
        opts.overwrite,
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


# ---------------------------------------------------------------------------------------
# Inspect
# ---------------------------------------------------------------------------------------


def _render_pair(ex: Example, template, tokenizer) -> tuple[str, str]:
    """(prompt, target) exactly as training builds them (engineer C's tokenize.render_pair)."""
    try:
        from slam_align.data.tokenize import render_pair
    except ImportError:  # pragma: no cover - tokenize.py is part of the package
        prompt = template.render(ex.query, lang=ex.lang, tokenizer=tokenizer)
        return prompt, (" " if prompt and not prompt[-1].isspace() else "") + ex.output
    return render_pair(ex, template, tokenizer)


def inspect(opts: InspectOptions) -> dict:
    """A few examples of FILE rendered with the prompt template; returns ``{template, examples, ...}``."""
    from slam_align.data.prompts import get_prompt

    template = get_prompt(opts.prompt)
    if opts.n < 1:
        raise SlamError(f"-n must be a positive integer, got {opts.n}")
    path = Path(opts.file)
    examples = read_alpaca(path / "train.jsonl" if path.is_dir() else path)
    total = len(examples)
    if opts.lang:
        examples = [e for e in examples if e.lang == opts.lang]
    if opts.kind:
        examples = [e for e in examples if e.kind == opts.kind]
    if not examples:
        raise SlamError(f"{path}: no examples match lang={opts.lang} kind={opts.kind}")
    chosen = (
        random.Random(opts.seed).sample(examples, min(opts.n, len(examples)))
        if opts.random
        else examples[: opts.n]
    )
    tokenizer = None
    if template.uses_chat_template:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(opts.tokenizer) if opts.tokenizer else None
    shown = []
    for ex in chosen:
        prompt, target = _render_pair(ex, template, tokenizer)
        shown.append(
            {"lang": ex.lang, "source": ex.source, "kind": ex.kind, "prompt": prompt, "target": target}
        )
    return {
        "file": str(path),
        "template": template.id,
        "rows": total,
        "languages": dict(sorted(Counter(e.lang for e in examples).items())),
        "examples": shown,
    }


def inspect_cli(opts: InspectOptions) -> int:
    result = inspect(opts)
    if opts.json:
        print(dumps_json(result))
        return 0
    print(f"{result['file']}: {result['rows']} rows; template {result['template']}")
    for i, ex in enumerate(result["examples"], 1):
        print(
            f"\n===== example {i}  lang={ex['lang']}  kind={ex['kind'] or '-'}  source={ex['source']} ====="
        )
        print(ex["prompt"] + ex["target"])
    return 0
