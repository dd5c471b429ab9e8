"""``slam eval``: generate answers to benchmark problems, score them, write a run directory.

``evaluate(EvalOptions(...))`` is the Python API (the demo calls it); ``eval_cli`` is the
command. The run directory holds:

- ``predictions.jsonl``: one line per problem (``benchmark``, ``lang``, ``id``, ``index``,
  ``question``, ``prediction``, ``extracted``, ``answer``, ``correct``, ``num_tokens``),
  appended and flushed after every batch. A restarted run skips the problems already
  there (resume), drops a half-written last line, and never writes a duplicate;
  it refuses a directory made with another model or generation set-up.
- ``metrics.json`` (see :mod:`slam_align.evaluate.report`; ``training`` holds the record of
  the ``slam train`` run that produced the model, when there is one; ``protocol``,
  ``prompt``, ``generation`` and ``scoring`` say how the numbers were produced), ``results.md``
  (table), ``accuracy.png`` (bar chart), ``config.yaml``, ``run.json``, ``environment.json``,
  ``timing.json``, ``README.md``.

``--protocol paper`` generates as the published scripts do (:data:`PROTOCOLS`), so that
``accuracy_last_number`` can be put next to a published number. ``--checkpoints`` evaluates
the checkpoints of a ``slam train`` run directory (:mod:`slam_align.evaluate.checkpoints`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import Options, option, options_to_dict
from slam_align.data.definitions import find_definition
from slam_align.data.prompts import DEFAULT_PROMPT, get_prompt
from slam_align.errors import SlamError
from slam_align.evaluate.answers import ANSWER_TYPES, scoring_record
from slam_align.evaluate.checkpoints import by_step_markdown, evaluate_checkpoints
from slam_align.evaluate.extract import stop_sequences
from slam_align.evaluate.generate import BACKENDS, length_sorted_batches, make_backend
from slam_align.evaluate.report import compute_metrics, markdown_table, metrics_chart, pct
from slam_align.evaluate.score import SCORE_FIELDS, score_row
from slam_align.io import (
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    check_run_dir,
    dumps_json,
    open_run_dir,
    read_json_object,
    read_jsonl,
    read_run_record,
    write_run_readme,
)

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.jsonl"
OUTPUTS = (PREDICTIONS, "results.md", "accuracy.png")
# What makes two runs' generations comparable: a resumed run must match all of these.
IDENTITY_KEYS = ("model", "prompt", "cot", "max_new_tokens", "backend", "dtype", "protocol")
# Runs made before a key existed hold its value of that time.
IDENTITY_DEFAULTS = {"protocol": "slam"}
TRAIN_RECORD = "slam_train.json"  # written by slam train beside the model it trained


@dataclass(frozen=True)
class Protocol:
    """How answers are generated: budget per benchmark, where generation stops, which prompts."""

    name: str
    description: str
    # benchmark -> budget; "*" for any other. A benchmark definition may set its own budget under
    # a protocol (X-CSQA under paper: 1024, as SLAM's X-CSQA evaluator), used where this has none.
    max_new_tokens: dict[str, int]
    stop_at_run_on: bool  # stop (and cut) at the template's and the generic run-on markers
    prompts: tuple[str, ...] | None = None  # the prompts it allows (None: any)
    cot: bool | None = None  # the CoT setting it requires (None: either)

    def budget(self, benchmark: str, override: int | None = None) -> int:
        if override is not None:
            return override
        if benchmark.lower() in self.max_new_tokens:
            return self.max_new_tokens[benchmark.lower()]
        definition = find_definition(benchmark)
        own = definition.budget(self.name) if definition is not None else None
        return own if own is not None else self.max_new_tokens["*"]

    def own_budgets(self, benchmarks: list[str]) -> dict[str, int]:
        """The budgets that ``benchmarks``' definitions set under this protocol."""
        out = {}
        for b in benchmarks:
            definition = find_definition(b)
            if b.lower() not in self.max_new_tokens and definition and definition.budget(self.name):
                out[b] = definition.budget(self.name)
        return out


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        Protocol(
            "slam",
            "slam-align's own: greedy, 512 new tokens, stop at the template's and the generic run-on "
            "markers (a new 'Question:', '### Instruction', ...), any prompt",
            max_new_tokens={"*": 512},
            stop_at_run_on=True,
        ),
        # QAlign evaluate/scripts/mgsm_test.py:136-140,159-168 and svamp_test.py:120-124,142-152
        # (@ a65ee638); MathOctopus generate_and_eval.py:134-164, svamp_test.py:120-150 (@ 4d385db6):
        # the Alpaca prompt without a CoT trigger, greedy, 600 new tokens on MGSM, 300 on MSVAMP,
        # EOS the only stop, the whole output decoded and scored.
        Protocol(
            "paper",
            "the published scripts' (QAlign / MathOctopus): greedy, 600 new tokens on MGSM and 300 on "
            "MSVAMP (600 elsewhere), no stop sequence (EOS only), Alpaca prompt, no CoT trigger",
            max_new_tokens={"mgsm": 600, "msvamp": 300, "*": 600},
            stop_at_run_on=False,
            prompts=("alpaca", "mathoctopus"),
            cot=False,
        ),
    ]
}


@dataclass
class EvalOptions(Options):
    model: str = option(help="model to evaluate: hub id or local directory")
    output: str = option(help="run directory (predictions.jsonl, metrics.json, results.md, accuracy.png)")
    benchmark: list[str] = option(
        ["mgsm", "msvamp"],
        help="benchmarks, comma-separated: mgsm, msvamp, gsm8k, xcsqa, a definition file PATH.yaml, jsonl:PATH",
    )
    langs: list[str] | None = option(
        None,
        help="languages, comma-separated (default: each benchmark's own: the paper's 10 that MGSM and MSVAMP "
        "have, X-CSQA's 16; 'all')",
    )
    data_dir: str | None = option(
        None, help="local benchmark files (folder of mgsm/, msvamp/, gsm8k/, X-CSQA/); default: hub"
    )
    limit: int | None = option(None, help="only the first N problems of every language", at_least=1)
    prompt: str = option(
        DEFAULT_PROMPT, help="prompt template (slam_align.data.prompts): alpaca, mathoctopus, ..."
    )
    cot: bool = option(
        False, help="append \"Let's think step by step.\" to the prompt (MetaMath's evaluation)"
    )
    protocol: str = option(
        "slam",
        choices=list(PROTOCOLS),
        help="generation settings: slam (this project's: stop at run-on text) or paper (the published "
        "scripts': 600 new tokens on MGSM, 300 on MSVAMP, 1024 on X-CSQA, EOS only, Alpaca prompt, "
        "no CoT), see docs/evaluation.md",
    )
    max_new_tokens: int | None = option(
        None,
        help="generation budget per problem (default: the protocol's: 512; paper: 600 MGSM, 300 MSVAMP, "
        "1024 X-CSQA)",
        at_least=1,
    )
    checkpoints: list[str] | None = option(
        None,
        help="--model is a slam train run directory: evaluate its checkpoints, 'all' (every checkpoint-N "
        "and final/), 'last' (final/, else the newest checkpoint) or steps 'N,M' ('final' for final/), "
        "one run directory each under --output, plus an accuracy-by-step table and plot",
    )
    batch_size: int = option(32, help="prompts per generate() call (transformers backend)", at_least=1)
    backend: str = option("transformers", choices=list(BACKENDS), help="generation engine")
    dtype: str = option("auto", help="auto (bf16 on GPU, fp32 on CPU), bf16, fp16 or fp32")
    device: str | None = option(None, help="torch device (default: cuda when available, else cpu)")
    tensor_parallel: int = option(1, help="GPUs per model (vllm backend)", at_least=1)
    bootstrap: int = option(1000, help="bootstrap resamples for the 95%% intervals (0: none)", at_least=0)
    seed: int = option(0, help="seed of the bootstrap")
    overwrite: bool = option(
        False, help="replace an earlier slam eval run in --output (else it is continued)"
    )
    progress: bool = option(True, help="show a progress bar")


def _check(options: EvalOptions) -> None:
    from slam_align.models.loading import resolve_device, resolve_dtype

    if not options.benchmark:
        raise SlamError("--benchmark is empty; expected e.g. mgsm,msvamp")
    protocol = PROTOCOLS[options.protocol]
    template = get_prompt(options.prompt)
    if protocol.prompts is not None and template.name not in protocol.prompts:
        raise SlamError(
            f"--protocol {protocol.name} evaluates with the prompt {' or '.join(protocol.prompts)} "
            f"(as the published scripts do), not '{options.prompt}'"
        )
    if protocol.cot is not None and options.cot != protocol.cot:
        raise SlamError(
            f"--protocol {protocol.name} has {'a' if protocol.cot else 'no'} CoT trigger; drop --cot"
        )
    if options.max_new_tokens is not None and options.protocol != "slam":
        raise SlamError(
            f"--protocol {protocol.name} fixes the generation budget "
            f"({_budget_text(protocol)}); drop --max-new-tokens"
        )
    resolve_dtype(options.dtype, resolve_device(options.device))
    model = str(options.model)
    looks_local = model.startswith(("/", ".", "~")) or model.count("/") > 1
    if looks_local and not Path(model).expanduser().exists():
        raise SlamError(f"--model {model}: no such directory (expected a local model directory or a hub id)")


def _check_with_problems(options: EvalOptions) -> None:
    _check(options)
    load_problems(options)


def load_problems(options: EvalOptions) -> tuple[list, list[str]]:
    """(problems, benchmark names in order). With several benchmarks, each gets the asked
    languages it has (MSVAMP has no Telugu, GSM8K is English only, X-CSQA has no Bengali)."""
    from slam_align.data.benchmarks import benchmark_languages, load_benchmark, parse_benchmarks

    names = parse_benchmarks(options.benchmark)
    langs = options.langs
    problems, order = [], []
    for name in names:
        wanted = langs
        available = benchmark_languages(name)
        if langs and langs != ["all"] and len(names) > 1 and available is not None:
            wanted = [lang for lang in langs if lang in available]
            if not wanted:
                log.warning("%s has none of the languages %s: skipped", name, ",".join(langs))
                continue
            skipped = [lang for lang in langs if lang not in available]
            if skipped:
                log.info("%s has no %s: those languages are skipped for it", name, ",".join(skipped))
        rows = load_benchmark(name, wanted, options.data_dir, options.limit)
        if not rows:
            raise SlamError(f"{name}: no problems to evaluate")
        problems += rows
        order += [p.benchmark for p in rows[:1]]
    if not problems:
        have = sorted({lang for name in names for lang in (benchmark_languages(name) or [])})
        raise SlamError(
            f"--langs {','.join(langs or [])}: none of these languages is in --benchmark {','.join(names)}; "
            f"expected some of: {', '.join(have) or 'its languages'}"
        )
    return problems, list(dict.fromkeys(order))


def _budget_text(protocol: Protocol) -> str:
    return ", ".join(f"{'other' if k == '*' else k} {v}" for k, v in protocol.max_new_tokens.items())


def identity(options: EvalOptions) -> dict:
    model = Path(options.model)
    protocol = PROTOCOLS[options.protocol]
    budget = options.max_new_tokens
    if budget is None:  # the protocol's budget: one number, or one per benchmark
        budget = protocol.budget("*") if len(protocol.max_new_tokens) == 1 else _budget_text(protocol)
    return {
        # A local model by its absolute path ("./m" and "m" are the same model); a hub id as given.
        "model": str(model.resolve()) if model.exists() else str(options.model),
        "prompt": get_prompt(options.prompt).id,
        "cot": options.cot,
        "max_new_tokens": budget,
        "backend": options.backend,
        "dtype": options.dtype,
        "protocol": options.protocol,
    }


def generation_settings(options: EvalOptions, template, benchmarks: list[str]) -> dict:
    """How the generations were made: recorded in metrics.json (``generation``)."""
    protocol = PROTOCOLS[options.protocol]
    stop = list(stop_sequences(template)) if protocol.stop_at_run_on else []
    description = protocol.description
    own = {} if options.max_new_tokens is not None else protocol.own_budgets(benchmarks)
    if own:  # X-CSQA under paper: its own evaluator's budget
        description += "; " + ", ".join(f"{n} new tokens on {b} (its definition)" for b, n in own.items())
    return {
        "protocol": protocol.name,
        "protocol_description": description,
        "decoding": "greedy",
        "max_new_tokens": {b: protocol.budget(b, options.max_new_tokens) for b in benchmarks},
        "stop": "EOS, and the run-on markers below (question markers only after a digit)"
        if stop
        else "EOS only",
        "stop_sequences": stop,
        "prompt": template.id,
        "cot": options.cot,
        "special_tokens": template.add_special_tokens,  # BOS (as the tokenizer adds it) before the prompt
        "backend": options.backend,
        "dtype": options.dtype,
        "batch_size": options.batch_size,
    }


def _read_existing(out: Path) -> tuple[list[dict], bool]:
    """Rows already in ``predictions.jsonl`` (first of any duplicate id); whether a torn
    last line (a run killed mid-write) or a duplicate was dropped."""
    path = out / PREDICTIONS
    if not path.is_file():
        return [], False
    rows = read_jsonl(path, what="predictions file", tolerate_torn_tail=True)
    kept, seen = [], set()
    for lineno, row in enumerate(rows, 1):
        if "id" not in row:
            raise SlamError(f"{path}: line {lineno}: expected a prediction object with an 'id'")
        if row["id"] not in seen:
            seen.add(row["id"])
            kept.append(row)
    lines = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return kept, len(kept) != lines


def _open_run(options: EvalOptions, config: dict):
    """Open ``--output``: continue the run there when it was made with the same set-up."""
    out = Path(options.output).expanduser()
    mine = identity(options)
    state = check_run_dir(out, "eval", resume=True, outputs=OUTPUTS, resumable=True)
    if state == "resume":
        old = {**IDENTITY_DEFAULTS, **((read_run_record(out) or {}).get("identity") or {})}
        diff = [k for k in IDENTITY_KEYS if str(old.get(k)) != str(mine[k])]
        if diff and not options.overwrite:
            k = diff[0]
            raise SlamError(
                f"{out}: holds a run with {k}={old.get(k)!r}, not {mine[k]!r}; results of different set-ups "
                "are never mixed: choose another --output or pass --overwrite"
            )
    # --overwrite: start the run afresh (only slam eval's own files are removed).
    return open_run_dir(
        out,
        "eval",
        config=config,
        overwrite=options.overwrite,
        resume=not options.overwrite,
        outputs=OUTPUTS,
        resumable=True,
        record={"identity": mine},
    )


def _render_prompts(problems, template, cot: bool, tokenizer) -> list[str]:
    return [template.render(p.question, lang=p.lang, cot=cot, tokenizer=tokenizer) for p in problems]


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total, initial=initial, desc="slam eval", unit="problem", disable=not enabled, leave=False
    )


def _check_same_problems(existing: list[dict], problems, path: Path) -> None:
    """A saved row must be the same problem (question and gold answer) as the one asked now."""
    current = {p.id: p for p in problems}
    for row in existing:
        p = current.get(row["id"])
        if p is None:
            continue
        if row.get("question") != p.question or _gold_or_none(row, p) != p.answer:
            what = "question" if row.get("question") != p.question else "gold answer"
            raise SlamError(
                f"{path}: {row['id']} was generated for a different {what} than the benchmark has now; "
                "use another --output or pass --overwrite"
            )


def _gold_or_none(row: dict, problem) -> float | str | None:
    """The saved row's gold answer, read as the problem's answer type (None when unreadable)."""
    kind = ANSWER_TYPES[problem.answer_type]
    try:
        kind.check_row(row)
        return kind.parse_gold(row.get("answer"), row)
    except SlamError:
        return None


def _row(p, prediction: str, num_tokens: int) -> dict:
    """A predictions line before scoring; a choice problem also records its choices and answer type."""
    row = {"benchmark": p.benchmark, "lang": p.lang, "id": p.id, "index": p.index, "question": p.question}
    if p.answer_type != "number":
        row["choices"] = dict(p.choices)
    row.update({"prediction": prediction, "answer": p.answer, "num_tokens": num_tokens})
    if p.answer_type != "number":
        row["answer_type"] = p.answer_type
    return row


def generate_missing(options: EvalOptions, problems, out: Path, timing: dict) -> None:
    """Generate every problem not yet in ``predictions.jsonl``, appending one batch at a time."""
    existing, broken = _read_existing(out)
    path = out / PREDICTIONS
    if broken:  # rewrite without the half-written / duplicate lines before appending
        atomic_write_jsonl(path, existing)
    _check_same_problems(existing, problems, path)
    done = {r["id"] for r in existing}
    todo = [p for p in problems if p.id not in done]
    timing["problems_resumed"] = len(problems) - len(todo)
    timing["problems_generated"] = len(todo)
    if not todo:
        return
    template = get_prompt(options.prompt)
    protocol = PROTOCOLS[options.protocol]
    t0 = time.perf_counter()
    backend = make_backend(
        options.backend, options.model, options.dtype, options.device, options.tensor_parallel
    )
    timing["load_seconds"] = time.perf_counter() - t0
    prompts = _render_prompts(todo, template, options.cot, backend.tokenizer)
    add_special = template.add_special_tokens  # the tokenizer's BOS, unless the template says not
    lengths = backend.prompt_lengths(prompts, add_special_tokens=add_special)
    # Stop where extraction would cut anyway: the template's markers and the generic run-on ones
    # (the paper protocol: EOS only, as the published scripts).
    stop = stop_sequences(template) if protocol.stop_at_run_on else ()
    chunk = options.batch_size if options.backend == "transformers" else max(options.batch_size, 256)
    budgets = [protocol.budget(p.benchmark, options.max_new_tokens) for p in todo]
    tokens = 0
    t1 = time.perf_counter()
    bar = _progress(len(problems), len(problems) - len(todo), options.progress)
    with open(path, "a", encoding="utf-8") as f:
        for batch in _batches(lengths, budgets, chunk):
            gens = backend.generate_batch(
                [prompts[i] for i in batch], budgets[batch[0]], stop, add_special_tokens=add_special
            )
            lines = []
            for i, g in zip(batch, gens):
                p = todo[i]
                row = _row(p, g.text, g.num_tokens)
                scored = score_row(row, where=p.id)
                row.update({k: scored[k] for k in SCORE_FIELDS})
                lines.append(dumps_json(row, indent=None) + "\n")
                tokens += g.num_tokens
            f.write("".join(lines))  # one write per batch: a kill loses at most this batch
            f.flush()
            os.fsync(f.fileno())
            bar.update(len(batch))
    bar.close()
    timing["generate_seconds"] = time.perf_counter() - t1
    timing["tokens_generated"] = tokens
    timing["problems_per_second"] = len(todo) / max(timing["generate_seconds"], 1e-9)
    timing["tokens_per_second"] = tokens / max(timing["generate_seconds"], 1e-9)
    timing["device"] = str(getattr(backend, "device", "vllm"))


def _batches(lengths: list[int], budgets: list[int], chunk: int):
    """Length-sorted batches, each of one generation budget (MGSM and MSVAMP differ in paper)."""
    for budget in sorted(set(budgets), reverse=True):
        members = [i for i, b in enumerate(budgets) if b == budget]
        for batch in length_sorted_batches([lengths[i] for i in members], chunk):
            yield [members[j] for j in batch]


def evaluate(options: EvalOptions) -> dict:
    """Run the evaluation described by ``options``; return the metrics (also in ``metrics.json``).

    With ``checkpoints``: every chosen checkpoint of the training run ``model``, one run
    directory each under ``output``; returns the sweep's summary."""
    if options.checkpoints:
        return evaluate_checkpoints(options, evaluate, _check_with_problems)
    start = time.perf_counter()
    _check(options)
    template = get_prompt(options.prompt)
    problems, order = load_problems(options)
    with _open_run(options, options_to_dict(options)) as run:
        run.begin_work()  # predictions are appended as they come: a failed run is resumed
        metrics = _evaluate_in(run.path, options, template, problems, order, start)
        run.finish(problems=len(problems))
    return metrics


def training_record(model: str) -> dict | None:
    """The record ``slam train`` left beside the model (``slam_train.json``), if any."""
    path = Path(model).expanduser() / TRAIN_RECORD
    return read_json_object(path, "training record") if path.is_file() else None


def _evaluate_in(out: Path, options: EvalOptions, template, problems, order, start: float) -> dict:
    timing: dict = {"backend": options.backend, "batch_size": options.batch_size}
    generate_missing(options, problems, out, timing)

    # Score exactly the problems asked for now (a directory may hold more from earlier calls).
    saved = _read_existing(out)[0]
    # Re-score every row with today's extraction (a resumed run may predate a fix), so that
    # metrics.json, the file and `slam score` always agree.
    rescored = [
        {**r, **{k: v for k, v in score_row(r, where=r["id"]).items() if k in SCORE_FIELDS}} for r in saved
    ]
    if rescored != saved:
        atomic_write_jsonl(out / PREDICTIONS, rescored)
    rows_by_id = {r["id"]: r for r in rescored}
    missing = [p.id for p in problems if p.id not in rows_by_id]
    if missing:
        raise SlamError(f"{out / PREDICTIONS}: no prediction for {missing[0]} after generation")
    rows = [rows_by_id[p.id] for p in problems]
    metrics = compute_metrics(rows, n_boot=options.bootstrap, seed=options.seed, benchmark_order=order)
    metrics = {
        "model": options.model,
        "prompt": template.id,
        "cot": options.cot,
        "protocol": options.protocol,
        **metrics,
        "generation": generation_settings(options, template, order),
        "scoring": scoring_record([p.answer_type for p in problems]),
        "training": training_record(options.model),
    }
    atomic_write_json(out / "metrics.json", metrics)
    table = markdown_table(metrics)
    atomic_write_text(out / "results.md", f"# slam eval: {options.model}\n\n{table}")
    metrics_chart(
        metrics, out / "accuracy.png", f"{Path(options.model).name or options.model} ({template.id})"
    )
    timing["total_seconds"] = time.perf_counter() - start
    timing["problems"] = len(problems)
    atomic_write_json(out / "timing.json", timing)
    _write_readme(out, options, metrics, timing, table)
    return metrics


def _write_readme(out: Path, options: EvalOptions, metrics: dict, timing: dict, table: str) -> None:
    published = "last number"
    if metrics.get("answer_type") == "choice":
        published = '"The answer is (X)."'
    summary = (
        f"average {pct(metrics['average'])}%, non-English average {pct(metrics['average_non_en'])}%, "
        f"no extractable answer in {pct(metrics['no_answer_rate'])}% of outputs ({metrics['benchmark']}); "
        f"the published protocol ({published}) reads an average of {pct(metrics.get('average_last_number'))}%"
    )
    gen = metrics["generation"]
    budget = ", ".join(f"{b} {n}" for b, n in gen["max_new_tokens"].items())
    write_run_readme(
        out / "README.md",
        f"slam eval: {options.model}",
        {
            "Set-up": f"protocol `{options.protocol}`; benchmarks {', '.join(metrics['benchmarks'])}; "
            f"prompt `{metrics['prompt']}`{' + CoT trigger' if options.cot else ''}; greedy, max new tokens: "
            f"{budget}; stop: {gen['stop'].split(',')[0]}; extraction `{metrics['scoring']['accuracy']['extractor']}`; "
            f"backend {options.backend}; {timing['problems']} problems "
            f"({timing.get('problems_generated', 0)} generated now, {timing.get('problems_resumed', 0)} resumed).",
            "Summary": summary,
            "Accuracy (%)": table,
            "Files": "`predictions.jsonl` every generation with its extracted and gold answer; "
            "`metrics.json` accuracy per language (fraction 0..1) by this project's extraction (`accuracy`) and "
            "by the published protocol (`accuracy_last_number`), averages, 95% bootstrap intervals, "
            "no-answer rate, the generation and scoring settings, the training run's record; "
            "`results.md` and `accuracy.png` the same as a table and a chart; "
            "`config.yaml` the options; `timing.json` time and throughput. "
            "`slam score --predictions predictions.jsonl` re-scores the generations.",
        },
    )


def eval_cli(options: EvalOptions) -> int:
    metrics = evaluate(options)
    if options.checkpoints:
        print(by_step_markdown(metrics))
        print(f"wrote {Path(options.output) / 'accuracy_by_step.md'} and one run directory per checkpoint")
        return 0
    print(markdown_table(metrics))
    print(f"wrote {Path(options.output) / 'metrics.json'}")
    return 0
