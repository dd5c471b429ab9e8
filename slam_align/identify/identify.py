"""``slam identify``: which layers handle multilingualism?

Feed parallel questions in several languages, count FFN neuron activations per layer and
language on the device, score every layer (SLAM's activation statistics or LAPE), pick
``--top-k`` layers and write ``OUTPUT/layers.json`` (read by ``slam train --layers
auto:OUTPUT/layers.json``) with every statistic, plus plots, README.md, config.yaml,
metrics.json and timing.json. Definitions and formulas: docs/identify.md.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from slam_align.config import Options, option, options_to_dict
from slam_align.errors import SlamError
from slam_align.identify.stats import ACTIVATION_SCORES
from slam_align.models.layers import LAYERS_FILE

log = logging.getLogger(__name__)

METHODS = ("activation", "lape")
SIMILARITY_FILE = "similarity.json"
OUTPUTS = (LAYERS_FILE, SIMILARITY_FILE, "*.png")


@dataclass
class IdentifyOptions(Options):
    model: str = option(help="model: hub id or local directory")
    output: str = option(help="run directory (layers.json, plots, README.md)", aliases=["-o"])
    benchmark: str = option(
        "mgsm",
        help="parallel questions: mgsm, msvamp, gsm8k, xcsqa, a definition file PATH.yaml or jsonl:PATH",
    )
    data_dir: str | None = option(None, help="local benchmark files (default: the Hugging Face hub)")
    langs: list[str] | None = option(
        None,
        help="languages (comma-separated, or all; default: the benchmark's own, e.g. the paper's 10 for MGSM, "
        "X-CSQA's 16); must include en for --method activation",
    )
    limit: int | None = option(
        None, help="at most this many questions per language (the same indices)", at_least=1
    )
    method: str = option("activation", help="layer score", choices=list(METHODS))
    score: str = option(
        "msd",
        help="activation method: msd (deviation of activated-neuron counts over languages, the paper's), "
        "overlap (1 - overlap with English's activated neurons) or combined",
        choices=list(ACTIVATION_SCORES),
    )
    top_k: int = option(6, help="how many layers to select", at_least=1)
    contiguous: bool = option(False, help="select the best block of --top-k adjacent layers")
    threshold: float = option(0.0, help="a neuron is activated when its activation exceeds this")
    overlap_top_fraction: float = option(
        0.1,
        help="a language's activated set: its most often activated neurons, this fraction of the layer",
        above=0,
        at_most=1,
    )
    lape_top_rate: float = option(
        0.01, help="LAPE: fraction of all neurons called language-specific", above=0, at_most=1
    )
    lape_filter_rate: float = option(
        0.95,
        help="LAPE: activation-probability quantile a neuron must exceed in some language",
        above=0,
        at_most=0.999999,
    )
    prompt: str | None = option(
        None, help="render questions with this prompt template (only question tokens are counted)"
    )
    batch_size: int = option(8, help="questions per forward pass", at_least=1)
    max_length: int = option(512, help="truncate inputs to this many tokens", at_least=2)
    dtype: str = option("auto", help="weights' dtype", choices=["auto", "float32", "bfloat16", "float16"])
    device: str | None = option(None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    ffn_pattern: str | None = option(None, help="regex naming FFN modules for unknown architectures")
    similarity: bool = option(
        True,
        help="also measure each layer's cross-lingual similarity to English (similarity.json; needs en)",
    )
    plots: bool = option(True, help="write PNG plots")
    progress: bool = option(True, help="show a progress bar")
    overwrite: bool = option(False, help="replace the results in a non-empty --output directory")


def _check_langs(langs: list[str], method: str) -> list[str]:
    langs = list(dict.fromkeys(lang.strip() for lang in langs if lang.strip()))
    if len(langs) < 2:
        raise SlamError(f"--langs needs at least two languages to compare, got {','.join(langs) or 'none'}")
    if method == "activation" and "en" not in langs:
        raise SlamError(
            f"--langs {','.join(langs)} has no 'en': the activation method compares each language "
            "with English; add en or use --method lape"
        )
    return langs


def _parallel_questions(problems, langs: list[str]) -> dict[str, list[str]]:
    """Questions per language, restricted to the indices every language has (truly parallel)."""
    by_lang: dict[str, dict[int, str]] = {lang: {} for lang in langs}
    for p in problems:
        if p.lang in by_lang:
            by_lang[p.lang][p.index] = p.question
    missing = [lang for lang, rows in by_lang.items() if not rows]
    if missing:
        raise SlamError(f"the benchmark has no questions in language(s): {', '.join(missing)}")
    common = sorted(set.intersection(*(set(rows) for rows in by_lang.values())))
    if not common:
        raise SlamError(
            "no question index is present in every language; identification needs parallel questions"
        )
    dropped = sum(len(rows) for rows in by_lang.values()) - len(common) * len(langs)
    if dropped:
        log.info("kept the %d questions present in every language (%d others dropped)", len(common), dropped)
    return {lang: [by_lang[lang][i] for i in common] for lang in langs}


def _act_modules(model, layers) -> tuple[list[list], list[str]]:
    """The modules to hook per layer, or a clear error for fused MoE experts."""
    from slam_align.models.architectures import model_type_of

    notes = []
    mods = [list(info.ffn_act_modules) for info in layers]
    bare = [info.index for info in layers if not info.ffn_act_modules]
    model_type = model_type_of(model) or type(model).__name__
    if bare:
        fused = any(layers[i].ffn_experts for i in bare)
        why = (
            "its FFN is a fused mixture of experts with no module whose input is the activation"
            if fused
            else "no FFN down projection was found"
        )
        raise SlamError(
            f"identification is not supported for {model_type} yet: layer {bare[0]}: {why}; "
            "pass the layers to slam train explicitly (--layers 0-5)"
        )
    if any(info.ffn_experts for info in layers):
        notes.append(
            f"{model_type} is a mixture of experts: the statistics come from the dense modules every "
            "token passes (the shared expert), not the routed experts"
        )
    return mods, notes


def identify(options: IdentifyOptions) -> dict:
    """Run identification; write the run directory; return the ``layers.json`` content."""
    from slam_align.data.benchmarks import load_benchmark
    from slam_align.io import open_run_dir
    from slam_align.models.loading import load_config, resolve_device

    o = options
    load_config(o.model)  # a missing or broken model fails now, before --output is touched
    # None: the benchmark's default languages; "all": every language it has (both resolved below)
    every = o.langs is None or [lang.strip() for lang in o.langs] == ["all"]
    langs = o.langs if every else _check_langs(o.langs, o.method)
    device = resolve_device(o.device)
    problems = load_benchmark(o.benchmark, langs, data_dir=o.data_dir, limit=o.limit)
    if every:
        langs = _check_langs(list(dict.fromkeys(p.lang for p in problems)), o.method)
    questions = _parallel_questions(problems, langs)
    with open_run_dir(
        o.output, "identify", config=options_to_dict(o), overwrite=o.overwrite, outputs=OUTPUTS
    ) as run:
        result, timing = _measure(o, langs, questions, device)
        run.begin_work()
        _write_run(run.path, o, result, timing)
        run.finish(selected=result["selected"])
    return result


def _wants_similarity(o: IdentifyOptions, langs: list[str]) -> bool:
    if o.similarity and "en" not in langs:
        log.info("no 'en' in --langs: the similarity to English is not measured")
    return o.similarity and "en" in langs


def _measure(o: IdentifyOptions, langs: list[str], questions: dict[str, list[str]], device: str):
    """Load the model, count activations on every question, score and select layers."""
    import torch

    from slam_align.identify.collect import collect_counts, encode_questions, make_batches
    from slam_align.identify.lape import lape_select
    from slam_align.identify.select import select_layers
    from slam_align.identify.similarity import HiddenStatePooler
    from slam_align.identify.stats import activation_scores, layer_statistics
    from slam_align.models.architectures import find_layers, model_type_of
    from slam_align.models.loading import load_model, load_tokenizer

    t_start = time.perf_counter()
    model = load_model(o.model, dtype=o.dtype, device=device)
    model.eval()
    tokenizer = load_tokenizer(o.model)
    layers = find_layers(model, ffn_pattern=o.ffn_pattern)
    if o.top_k > len(layers):
        raise SlamError(f"--top-k {o.top_k} exceeds the model's {len(layers)} layers")
    act_modules, notes = _act_modules(model, layers)
    t_loaded = time.perf_counter()

    encoded = [encode_questions(tokenizer, questions[lang], lang, o.prompt, o.max_length) for lang in langs]
    batches = make_batches(encoded, o.batch_size, tokenizer.pad_token_id)
    t_tokenized = time.perf_counter()
    pooler = (
        HiddenStatePooler([info.module for info in layers], langs) if _wants_similarity(o, langs) else None
    )
    with pooler or contextlib.nullcontext():
        counts = collect_counts(
            model,
            act_modules,
            batches,
            langs,
            o.threshold,
            questions=[len(questions[lang]) for lang in langs],
            progress=o.progress,
            pooler=pooler,
        )
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t_forward = time.perf_counter()

    probs = counts.probabilities()
    stats = layer_statistics(probs, langs, o.overlap_top_fraction)
    stats["scores"] = {
        s: activation_scores(stats, s) for s in ACTIVATION_SCORES if "en" in langs or s == "msd"
    }
    lape = lape_select(probs, o.lape_top_rate, o.lape_filter_rate)
    scores = (
        stats["scores"][o.score] if o.method == "activation" else [float(c) for c in lape["specific_count"]]
    )
    selected, rule = select_layers(scores, o.top_k, o.contiguous)
    t_stats = time.perf_counter()

    result = {
        "method": o.method,
        "score": o.score if o.method == "activation" else "lape_specific_count",
        "scores": scores,
        "selected": selected,
        "selection": {"rule": "contiguous" if o.contiguous else "top-k", "k": o.top_k, "description": rule},
        "langs": langs,
        "model": o.model,
        "model_type": model_type_of(model),
        "num_layers": len(layers),
        "benchmark": o.benchmark,
        "limit": o.limit,
        "prompt": o.prompt,
        "threshold": o.threshold,
        "num_questions": dict(zip(langs, counts.questions)),
        "num_tokens": dict(zip(langs, counts.tokens.tolist())),
        "activation": stats,
        "lape": lape,
        "notes": notes,
    }
    if pooler is not None:
        result["similarity"] = pooler.result()
    timing = {
        "load_seconds": t_loaded - t_start,
        "tokenize_seconds": t_tokenized - t_loaded,
        "forward_seconds": t_forward - t_tokenized,
        "statistics_seconds": t_stats - t_forward,
        "num_batches": len(batches),
        "num_tokens": int(sum(b.num_tokens for b in batches)),
        "tokens_per_second": sum(b.num_tokens for b in batches) / max(t_forward - t_tokenized, 1e-9),
        "device": device,
        "started": t_start,
    }
    return result, timing


def _write_run(out_dir: Path, o: IdentifyOptions, result: dict, timing: dict) -> None:
    from slam_align.io import atomic_write_json, write_run_readme
    from slam_align.models.layers import write_layers_file

    plots = []
    t_plots = time.perf_counter()
    if o.plots:
        from slam_align.identify.plots import write_plots

        plots = write_plots(result, out_dir)
        if "similarity" in result:
            from slam_align.identify.similarity import plot_similarity

            plot_similarity(result["similarity"], out_dir / "similarity.png")
            plots.append("similarity.png")
    timing["plots_seconds"] = time.perf_counter() - t_plots
    timing["total_seconds"] = time.perf_counter() - timing.pop("started")
    atomic_write_json(
        out_dir / "metrics.json",
        {
            "method": result["method"],
            "score": result["score"],
            "selected": result["selected"],
            "scores": result["scores"],
            "num_layers": result["num_layers"],
            "num_questions": result["num_questions"],
            "num_tokens": result["num_tokens"],
        },
    )
    atomic_write_json(out_dir / "timing.json", timing)
    if "similarity" in result:
        atomic_write_json(out_dir / SIMILARITY_FILE, result["similarity"])
    write_layers_file(out_dir / LAYERS_FILE, result)
    sections = _readme_sections(result, timing, plots, out_dir)
    write_run_readme(out_dir / "README.md", f"slam identify: {o.model}", sections)


def _readme_sections(result: dict, timing: dict, plots: list[str], out_dir: Path) -> dict[str, str]:
    langs = result["langs"]
    stats = result["activation"]
    header = "| layer | score | selected | " + " | ".join(f"act. {x}" for x in langs) + " |"
    rows = [header, "|" + "---|" * (3 + len(langs))]
    for layer, score in enumerate(result["scores"]):
        fractions = " | ".join(f"{100 * f:.1f}%" for f in stats["activated_fraction"][layer])
        mark = "yes" if layer in result["selected"] else ""
        rows.append(f"| {layer} | {score:.4g} | {mark} | {fractions} |")
    what = {
        "activation": f"SLAM's activation statistics, score `{result['score']}` (see docs/identify.md)",
        "lape": "LAPE: number of language-specific neurons per layer (Tang et al. 2024)",
    }[result["method"]]
    sections = {
        "Result": (
            f"Selected layers: **{','.join(map(str, result['selected']))}** ({result['selection']['description']}).\n\n"
            f"Train them with `slam train --layers auto:{out_dir}`.\n\n"
            f"Method: {what}. Languages: {', '.join(langs)}; benchmark `{result['benchmark']}`, "
            f"{next(iter(result['num_questions'].values()))} parallel questions per language."
        ),
        "Scores per layer": "`act. xx`: share of the layer's FFN neurons activated per token in language xx.\n\n"
        + "\n".join(rows),
        "Files": "\n".join(
            [
                "- `layers.json`: scores, selection and every per-layer, per-language statistic",
                "- `metrics.json`, `timing.json`, `config.yaml` (the options used)",
            ]
            + (
                [
                    "- `similarity.json`: per layer and language, the centred cosine to English (docs/identify.md)"
                ]
                if "similarity" in result
                else []
            )
            + [f"- `{p}`" for p in plots]
        ),
        "Timing": f"{timing['num_tokens']} tokens in {timing['num_batches']} batches, forward + statistics "
        f"{timing['forward_seconds']:.2f} s ({timing['tokens_per_second']:.0f} tokens/s) on {timing['device']}.",
    }
    if "similarity" in result:
        mean = result["similarity"]["mean_non_en"]
        sections["Cross-lingual similarity"] = (
            "Mean over the non-English languages of the centred cosine between a question's hidden "
            "state and the same question's in English, per layer (higher: the layer represents the "
            "languages alike):\n\n" + " ".join(f"{i}: {v:.3f}" for i, v in enumerate(mean))
        )
    if result["notes"]:
        sections["Notes"] = "\n".join(f"- {n}" for n in result["notes"])
    return sections


def identify_cli(options: IdentifyOptions) -> int:
    result = identify(options)
    scores = ", ".join(f"{i}:{s:.3g}" for i, s in enumerate(result["scores"]))
    print(f"scores ({result['score']}): {scores}")
    print(f"selected layers: {','.join(map(str, result['selected']))}")
    if "similarity" in result:
        mean = ", ".join(f"{i}:{v:.3f}" for i, v in enumerate(result["similarity"]["mean_non_en"]))
        print(f"similarity to English per layer (mean over languages): {mean}")
    print(f"wrote {Path(options.output) / LAYERS_FILE}")
    return 0
