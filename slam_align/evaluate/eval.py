"""``slam eval``: generate answers to benchmark problems, score them, write a run directory.

``evaluate(EvalOptions(...))`` is the Python API (the demo calls it); ``eval_cli`` is the
command. The run directory holds:

- ``predictions.jsonl``: one line per problem (``benchmark``, ``lang``, ``id``, ``index``,
  ``question``, ``prediction``, ``extracted``, ``answer``, ``correct``, ``num_tokens``),
  appended and flushed after every batch. A restarted run skips the problems already
  there (resume), drops a half-written last line, and never writes a duplicate;
  it refuses a directory made with another model or generation set-up.
- ``metrics.json`` (see :mod:`slam_align.evaluate.report`; ``training`` holds the record of
  the ``slam train`` run that produced the model, when there is one), ``results.md``
  (table), ``accuracy.png`` (bar chart), ``config.yaml``, ``run.json``, ``environment.json``,
  ``timing.json``, ``README.md``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import Options, option, options_to_dict
from slam_align.data.benchmarks import parse_gold
from slam_align.data.prompts import DEFAULT_PROMPT, get_prompt
from slam_align.errors import SlamError
from slam_align.evaluate.extract import stop_sequences
from slam_align.evaluate.generate import BACKENDS, length_sorted_batches, make_backend
from slam_align.evaluate.report import compute_metrics, markdown_table, metrics_chart, pct
from slam_align.evaluate.score import score_row
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
IDENTITY_KEYS = ("model", "prompt", "cot", "max_new_tokens", "backend", "dtype")
TRAIN_RECORD = "slam_train.json"  # written by slam train beside the model it trained


@dataclass
class EvalOptions(Options):
    model: str = option(help="model to evaluate: hub id or local directory")
    output: str = option(help="run directory (predictions.jsonl, metrics.json, results.md, accuracy.png)")
    benchmark: list[str] = option(
        ["mgsm", "msvamp"], help="benchmarks, comma-separated: mgsm, msvamp, gsm8k, jsonl:PATH"
    )
    langs: list[str] | None = option(
        None, help="languages, comma-separated (default: the paper's 10 that each benchmark has; 'all')"
    )
    data_dir: str | None = option(
        None, help="local benchmark files (folder of mgsm/, msvamp/, gsm8k/); default: hub"
    )
    limit: int | None = option(None, help="only the first N problems of every language", at_least=1)
    prompt: str = option(
        DEFAULT_PROMPT, help="prompt template (slam_align.data.prompts): alpaca, mathoctopus, ..."
    )
    cot: bool = option(
        False, help="append \"Let's think step by step.\" to the prompt (MetaMath's evaluation)"
    )
    max_new_tokens: int = option(512, help="generation budget per problem", at_least=1)
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
    resolve_dtype(options.dtype, resolve_device(options.device))
    model = str(options.model)
    looks_local = model.startswith(("/", ".", "~")) or model.count("/") > 1
    if looks_local and not Path(model).expanduser().exists():
        raise SlamError(f"--model {model}: no such directory (expected a local model directory or a hub id)")


def load_problems(options: EvalOptions) -> tuple[list, list[str]]:
    """(problems, benchmark names in order). With several benchmarks, each gets the asked
    languages it has (MSVAMP has no Telugu, GSM8K is English only)."""
    from slam_align.data.benchmarks import BENCHMARK_LANGS, load_benchmark, parse_benchmarks

    names = parse_benchmarks(options.benchmark)
    langs = options.langs
    problems, order = [], []
    for name in names:
        wanted = langs
        key = name.lower()
        if langs and langs != ["all"] and len(names) > 1 and key in BENCHMARK_LANGS:
            wanted = [lang for lang in langs if lang in BENCHMARK_LANGS[key]]
            if not wanted:
                log.warning("%s has none of the languages %s: skipped", name, ",".join(langs))
                continue
            skipped = [lang for lang in langs if lang not in BENCHMARK_LANGS[key]]
            if skipped:
                log.info("%s has no %s: those languages are skipped for it", name, ",".join(skipped))
        rows = load_benchmark(
            name if name.startswith("jsonl:") else key, wanted, options.data_dir, options.limit
        )
        if not rows:
            raise SlamError(f"{name}: no problems to evaluate")
        problems += rows
        order += [p.benchmark for p in rows[:1]]
    if not problems:
        raise SlamError("no problems to evaluate: check --benchmark and --langs")
    return problems, list(dict.fromkeys(order))


def identity(options: EvalOptions) -> dict:
    model = Path(options.model)
    return {
        # A local model by its absolute path ("./m" and "m" are the same model); a hub id as given.
        "model": str(model.resolve()) if model.exists() else str(options.model),
        "prompt": get_prompt(options.prompt).id,
        "cot": options.cot,
        "max_new_tokens": options.max_new_tokens,
        "backend": options.backend,
        "dtype": options.dtype,
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
        old = (read_run_record(out) or {}).get("identity") or {}
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
        if row.get("question") != p.question or _gold_or_none(row.get("answer")) != p.answer:
            what = "question" if row.get("question") != p.question else "gold answer"
            raise SlamError(
                f"{path}: {row['id']} was generated for a different {what} than the benchmark has now; "
                "use another --output or pass --overwrite"
            )


def _gold_or_none(value) -> float | None:
    try:
        return parse_gold(value)
    except SlamError:
        return None


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
    t0 = time.perf_counter()
    backend = make_backend(
        options.backend, options.model, options.dtype, options.device, options.tensor_parallel
    )
    timing["load_seconds"] = time.perf_counter() - t0
    prompts = _render_prompts(todo, template, options.cot, backend.tokenizer)
    add_special = not template.uses_chat_template  # a chat template already writes BOS
    lengths = backend.prompt_lengths(prompts, add_special_tokens=add_special)
    # Stop where extraction would cut anyway: the template's markers and the generic run-on ones.
    stop = stop_sequences(template)
    chunk = options.batch_size if options.backend == "transformers" else max(options.batch_size, 256)
    tokens = 0
    t1 = time.perf_counter()
    bar = _progress(len(problems), len(problems) - len(todo), options.progress)
    with open(path, "a", encoding="utf-8") as f:
        for batch in length_sorted_batches(lengths, chunk):
            gens = backend.generate_batch(
                [prompts[i] for i in batch], options.max_new_tokens, stop, add_special_tokens=add_special
            )
            lines = []
            for i, g in zip(batch, gens):
                p = todo[i]
                row = {
                    "benchmark": p.benchmark,
                    "lang": p.lang,
                    "id": p.id,
                    "index": p.index,
                    "question": p.question,
                    "prediction": g.text,
                    "answer": p.answer,
                    "num_tokens": g.num_tokens,
                }
                scored = score_row(row, where=p.id)
                row["extracted"], row["correct"] = scored["extracted"], scored["correct"]
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


def evaluate(options: EvalOptions) -> dict:
    """Run the evaluation described by ``options``; return the metrics (also in ``metrics.json``)."""
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
        {**r, **{k: v for k, v in score_row(r, where=r["id"]).items() if k in ("extracted", "correct")}}
        for r in saved
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
        **metrics,
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
    summary = (
        f"average {pct(metrics['average'])}%, non-English average {pct(metrics['average_non_en'])}%, "
        f"no extractable answer in {pct(metrics['no_answer_rate'])}% of outputs ({metrics['benchmark']})"
    )
    write_run_readme(
        out / "README.md",
        f"slam eval: {options.model}",
        {
            "Set-up": f"benchmarks {', '.join(metrics['benchmarks'])}; prompt `{metrics['prompt']}`"
            f"{' + CoT trigger' if options.cot else ''}; greedy, max {options.max_new_tokens} new tokens; "
            f"backend {options.backend}; {timing['problems']} problems "
            f"({timing.get('problems_generated', 0)} generated now, {timing.get('problems_resumed', 0)} resumed).",
            "Summary": summary,
            "Accuracy (%)": table,
            "Files": "`predictions.jsonl` every generation with its extracted and gold answer; "
            "`metrics.json` accuracy per language (fraction 0..1), averages, 95% bootstrap intervals, "
            "no-answer rate, the training run's record; `results.md` and `accuracy.png` the same as a table and a chart; "
            "`config.yaml` the options; `timing.json` time and throughput. "
            "`slam score --predictions predictions.jsonl` re-scores the generations.",
        },
    )


def eval_cli(options: EvalOptions) -> int:
    metrics = evaluate(options)
    print(markdown_table(metrics))
    print(f"wrote {Path(options.output) / 'metrics.json'}")
    return 0
