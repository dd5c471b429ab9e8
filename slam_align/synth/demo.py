"""``slam demo``: the whole SLAM story on a synthetic multilingual world, on a CPU.

1. build the world (:mod:`slam_align.synth.world`) and write its data files;
2. get the base model: pretrained from scratch on English problems with answers plus
   unlabelled text in the other languages (cached; :mod:`slam_align.synth.pretrain`);
3. ``slam identify`` on parallel held-out questions -> the layers that handle language;
4. ``slam train`` with SLAM (FFN up/down of those layers, one stage) and the baselines;
5. ``slam eval`` of every model on held-out problems in all ten languages;
6. the report (:mod:`slam_align.synth.report`): results.json, README.md, plots.

Steps 3-5 call the toolkit's own Python API (the same functions as the CLI commands):
the demo is their end-to-end test. Every number in the report is measured in the run.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from slam_align.config import Options, option, options_to_dict
from slam_align.errors import SlamError
from slam_align.io import atomic_write_jsonl, environment_versions
from slam_align.synth.pretrain import DEMO_PROMPT, PretrainSettings, get_base_model
from slam_align.synth.world import World, WorldSettings, full_settings, quick_settings

log = logging.getLogger(__name__)

DEMO_METHODS = ("slam", "slam-lower", "full", "two-stage", "lora", "attention", "random")
# What slam demo writes into its run directory besides the common files (--overwrite removes these).
OUTPUTS = ("results.json", "*.png", "data", "identify", "similarity", "eval", "runs", "seed-*")
# Demo rows that are `slam train` methods with fixed layers rather than the identified ones.
FIXED_LOWER = {"slam-lower": "slam"}


@dataclass
class DemoOptions(Options):
    output: str = option("slam-demo", help="run directory for results.json, README.md, plots", aliases=["-o"])
    quick: bool = option(
        False,
        help="a smaller, easier world (4.5 minutes on an idle CPU core with the base model cached; "
        "8.5 the first time)",
    )
    methods: list[str] = option(
        ["slam", "slam-lower", "full", "two-stage"],
        help="methods to train besides the base: slam (identified layers), slam-lower (SLAM on the lowest "
        "--top-k layers, as the paper's layers 0-5), full, two-stage, lora, attention, random",
    )
    seed: int = option(0, help="seed of the world, the base model and training")
    seeds: list[int] | None = option(
        None,
        help="run the whole experiment once per seed (e.g. 0,1,2; each in OUTPUT/seed-N) and report "
        "each method's mean and spread; overrides --seed",
    )
    top_k: int | None = option(None, help="layers SLAM selects (default: the preset's, 2)", at_least=1)
    cache_dir: str | None = option(
        None, help="where base models are cached (default: $SLAM_CACHE_DIR or ~/.cache/slam-align)"
    )
    threads: int = option(
        1,
        help="torch CPU threads (tiny models gain little from more; 1 is robust on a busy machine)",
        at_least=1,
    )
    overwrite: bool = option(False, help="replace the results in an existing --output directory")
    progress: bool = option(True, help="show progress while it runs")


@dataclass(frozen=True)
class Preset:
    """Everything the demo's numbers depend on besides the seed."""

    name: str
    world: WorldSettings
    pretrain: PretrainSettings
    # The paper's protocol: SLAM 4 epochs on its mixture (the one-stage baselines the same, on the
    # same data); QAlign 3 epochs per stage.
    epochs: float = 4.0
    two_stage_epochs: float = 3.0
    batch_size: int = 16
    # Peak learning rate per method: one value for all (tried on the quick world: SLAM at 5e-3
    # lost more English and gained no more than at 1e-3), kept per method so it can differ.
    learning_rates: dict = field(default_factory=lambda: dict.fromkeys(DEMO_METHODS, 1e-3))
    max_new_tokens: int = 40
    top_k: int = 2  # layers SLAM trains (the paper: 6 of 32; here 2 of 8 or 12)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "world": self.world.to_dict(),
            "pretrain": self.pretrain.to_dict(),
            "epochs": self.epochs,
            "two_stage_epochs": self.two_stage_epochs,
            "batch_size": self.batch_size,
            "learning_rates": dict(self.learning_rates),
            "max_new_tokens": self.max_new_tokens,
            "top_k": self.top_k,
            "prompt": DEMO_PROMPT,
        }


def preset(quick: bool, seed: int) -> Preset:
    if quick:
        return Preset(
            "quick",
            quick_settings(seed),
            PretrainSettings(hidden=64, layers=8, intermediate=192, steps=1000, seed=seed),
            max_new_tokens=32,
        )
    return Preset(
        "full",
        full_settings(seed),
        PretrainSettings(hidden=64, layers=12, intermediate=192, steps=1500, seed=seed),
        max_new_tokens=48,
    )


class Progress:
    """One line per step with its time (rich when it can draw, plain text otherwise)."""

    def __init__(self, enabled: bool, total: int):
        from rich.console import Console

        self.console = Console(stderr=True, quiet=not enabled)
        self.enabled, self.total, self.n = enabled, total, 0
        self.t0 = time.perf_counter()

    def step(self, text: str) -> None:
        self.n += 1
        self.console.print(f"[bold cyan][{self.n}/{self.total}][/] {text}  [dim]({self.elapsed():.0f} s)[/]")

    def note(self, text: str) -> None:
        self.console.print(f"      {text}")

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


def write_world_data(world: World, data_dir: Path) -> dict[str, Path]:
    """The world's files in the formats the toolkit reads (benchmark JSONL, Alpaca JSONL)."""
    translation, response = world.alignment_rows()
    files = {
        "test": data_dir / "heldout.jsonl",
        "identify": data_dir / "identify.jsonl",
        "slam": data_dir / "alignment_mixture.jsonl",
        "stage1": data_dir / "question_alignment.jsonl",
        "stage2": data_dir / "english_reasoning.jsonl",
    }
    atomic_write_jsonl(files["test"], world.benchmark_rows("test"))
    atomic_write_jsonl(files["identify"], world.benchmark_rows("identify"))
    atomic_write_jsonl(files["slam"], translation + response)
    atomic_write_jsonl(files["stage1"], translation)
    atomic_write_jsonl(files["stage2"], world.reasoning_rows())
    return files


def _identify(model: Path, files, langs, top_k: int, out: Path, plots: bool = True) -> dict:
    """``slam identify`` on the world's parallel questions: layers and the similarity statistic."""
    from slam_align.identify.identify import IdentifyOptions, identify

    return identify(
        IdentifyOptions(
            model=str(model),
            output=str(out),
            benchmark=f"jsonl:{files['identify']}",
            langs=list(langs),
            top_k=top_k,
            batch_size=32,
            device="cpu",
            plots=plots,
            progress=False,
        )
    )


def _train(method: str, base: Path, files, layers_file: Path, top_k: int, p: Preset, out: Path, seed: int):
    from slam_align.train.train import TrainOptions, train

    kwargs = {}
    if method == "two-stage":  # QAlign: question alignment, then the (larger) English reasoning data
        kwargs = {"stage1_data": [str(files["stage1"])], "stage2_data": [str(files["stage2"])]}
    else:  # SLAM's one-stage mixture: question alignment + X question -> English answer
        kwargs = {"data": [str(files["slam"])]}
    layers = f"auto:{layers_file}"
    if method in FIXED_LOWER:
        layers = f"0-{top_k - 1}" if top_k > 1 else "0"
    return train(
        TrainOptions(
            model=str(base),
            output=str(out),
            method=FIXED_LOWER.get(method, method),
            layers=layers,
            num_random_layers=top_k,
            prompt=DEMO_PROMPT,
            cutoff_len=256,
            num_train_epochs=p.two_stage_epochs if method == "two-stage" else p.epochs,
            learning_rate=p.learning_rates[method],
            warmup_ratio=0.05,
            per_device_train_batch_size=p.batch_size,
            seed=seed,
            logging_steps=25,
            progress=False,
            **kwargs,
        )
    )


def _evaluate(model_dir: Path, files, langs, p: Preset, out: Path, seed: int) -> dict:
    from slam_align.evaluate.eval import EvalOptions, evaluate

    return evaluate(
        EvalOptions(
            model=str(model_dir),
            output=str(out),
            benchmark=[f"jsonl:{files['test']}"],
            langs=list(langs),
            prompt=DEMO_PROMPT,
            max_new_tokens=p.max_new_tokens,
            batch_size=64,
            bootstrap=1000,
            device="cpu",
            seed=seed,
            progress=False,
        )
    )


def _check(options: DemoOptions) -> None:
    unknown = [m for m in options.methods if m not in DEMO_METHODS]
    if unknown:
        raise SlamError(
            f"--methods: unknown method '{unknown[0]}'; expected some of: {', '.join(DEMO_METHODS)}"
        )
    if not options.methods:
        raise SlamError("--methods is empty; expected e.g. slam,full,two-stage")
    if options.seeds is not None and (not options.seeds or min(options.seeds) < 0):
        raise SlamError(f"--seeds: expected seeds >= 0 such as 0,1,2, got {options.seeds}")
    from slam_align.io import check_directory_path
    from slam_align.synth.pretrain import default_cache_dir

    check_directory_path(default_cache_dir(options.cache_dir), "--cache-dir")


def run_demo(options: DemoOptions) -> dict:
    """Run the demo (once per seed with ``--seeds``); return ``results.json``'s content."""

    from slam_align.io import open_run_dir

    _check(options)
    seeds = list(dict.fromkeys(options.seeds)) if options.seeds else [options.seed]
    methods = list(dict.fromkeys(options.methods))
    p = preset(options.quick, seeds[0])
    top_k = options.top_k or p.top_k
    if top_k > p.pretrain.layers:
        raise SlamError(f"--top-k {top_k}: the base model has only {p.pretrain.layers} layers")
    with open_run_dir(
        options.output,
        "demo",
        config=options_to_dict(options),
        overwrite=options.overwrite,
        outputs=OUTPUTS,
        record={"preset": p.to_dict()},
    ) as run:
        run.begin_work()
        if len(seeds) == 1:
            results = _run(options, p, methods, top_k, run.path)
        else:
            results = _run_seeds(options, seeds, methods, top_k, run.path)
        run.finish()
    return results


def _run_seeds(options: DemoOptions, seeds: list[int], methods: list[str], top_k: int, out: Path) -> dict:
    """The experiment once per seed (world, base model, training), then mean and spread."""
    from slam_align.synth import report
    from slam_align.synth.readme import write_report

    per_seed = {}
    for seed in seeds:
        per_seed[seed] = _run(options, preset(options.quick, seed), methods, top_k, out / f"seed-{seed}")
    first = per_seed[seeds[0]]
    methods_mean = report.mean_methods(per_seed)
    timing = {"total_seconds": sum(r["timing"]["total_seconds"] for r in per_seed.values())}
    for key in ("pretrain_seconds",):
        timing[key] = sum(r["timing"][key] for r in per_seed.values())
    for key in ("train_seconds", "eval_seconds"):
        timing[key] = {m: sum(r["timing"][key][m] for r in per_seed.values()) for m in first["timing"][key]}
    results = {
        "methods": methods_mean,
        "targets": [
            {**t, "name": f"seed {seed}: {t['name']}"} for seed, r in per_seed.items() for t in r["targets"]
        ],
        "claims": [
            {**c, "claim": f"seed {seed}: {c['claim']}"} for seed, r in per_seed.items() for c in r["claims"]
        ],
        "across_seeds": report.across_seeds(per_seed),
        "per_seed": {
            str(seed): {m: _seed_summary(e) for m, e in r["methods"].items()} for seed, r in per_seed.items()
        },
        "similarity": {
            m: _mean_curves([r["similarity"][m] for r in per_seed.values()]) for m in first["similarity"]
        },
        "identified_layers": first["identified_layers"],
        "identified_layers_per_seed": {str(s): r["identified_layers"] for s, r in per_seed.items()},
        "identification": first["identification"],
        "num_layers": first["num_layers"],
        "world": first["world"],
        "seed": seeds[0],
        "seeds": seeds,
        "preset": first["preset"],
        "base_model": first["base_model"],
        "timing": timing,
    }
    write_report(out, results, environment_versions())
    return results


def _seed_summary(entry: dict) -> dict:
    keys = ("accuracy", "average", "average_non_en", "ci95", "train_seconds", "trainable_fraction")
    return {k: entry.get(k) for k in keys}


def _mean_curves(sims: list[dict]) -> dict:
    mean = [sum(vals) / len(vals) for vals in zip(*(s["mean_non_en"] for s in sims))]
    per_lang = {
        lang: [sum(vals) / len(vals) for vals in zip(*(s["per_lang"][lang] for s in sims))]
        for lang in sims[0]["per_lang"]
    }
    return {"statistic": sims[0]["statistic"], "per_lang": per_lang, "mean_non_en": mean}


def _run(options: DemoOptions, p: Preset, methods: list[str], top_k: int, out: Path) -> dict:
    import torch

    from slam_align.synth import report
    from slam_align.synth.readme import write_report

    torch.set_num_threads(options.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    bar = Progress(options.progress, total=4 + 2 * len(methods) + 1)
    timing: dict = {"threads": options.threads, "cpu_count": os.cpu_count()}
    seed = p.world.seed

    world = World(p.world)
    files = write_world_data(world, out / "data")
    langs = world.langs
    bar.step(f"world '{p.name}' (seed {seed}): {len(langs)} languages, data in {out / 'data'}")

    bar.step("base model: pretraining a tiny Llama on English problems + text in the other languages")
    t0 = time.perf_counter()
    base, pre_info, cached = get_base_model(world, p.pretrain, options.cache_dir, _pretrain_progress(options))
    timing["pretrain_seconds"] = 0.0 if cached else time.perf_counter() - t0
    bar.note(f"{'from the cache' if cached else 'trained'}: {base}")

    bar.step(f"slam identify (top {top_k} of {p.pretrain.layers} layers) and the similarity to English")
    t0 = time.perf_counter()
    ident = _identify(base, files, langs, top_k, out / "identify")
    timing["identify_seconds"] = time.perf_counter() - t0
    layers_file = out / "identify" / "layers.json"
    bar.note(f"selected layers: {ident['selected']}")

    results: dict = {"methods": {}, "similarity": {"base": ident["similarity"]}}
    bar.step("slam eval: base model, checked against the calibration targets")
    t0 = time.perf_counter()
    base_metrics = _evaluate(base, files, langs, p, out / "eval" / "base", seed)
    timing["eval_seconds"] = {"base": time.perf_counter() - t0}
    results["methods"]["base"] = report.method_entry(base_metrics, None)
    # The targets concern the base model alone and are settled before any method runs.
    results["targets"] = report.check_calibration(results["methods"]["base"])
    bar.note(report.one_line(results["methods"]["base"]))
    held = sum(t["held"] for t in results["targets"])
    bar.note(f"targets (calibration) held: {held} of {len(results['targets'])}")

    timing["train_seconds"] = {}
    timing["similarity_seconds"] = {}
    for method in methods:
        bar.step(f"slam train --method {method}")
        trained = _train(method, base, files, layers_file, top_k, p, out / "runs" / method, seed)
        timing["train_seconds"][method] = trained["train_seconds"]
        bar.step(f"slam eval: {method}")
        t0 = time.perf_counter()
        final = Path(trained["final_dir"])
        metrics = _evaluate(final, files, langs, p, out / "eval" / method, seed)
        timing["eval_seconds"][method] = time.perf_counter() - t0
        t0 = time.perf_counter()
        after = _identify(final, files, langs, top_k, out / "similarity" / method, plots=False)
        timing["similarity_seconds"][method] = time.perf_counter() - t0
        results["similarity"][method] = after["similarity"]
        results["methods"][method] = report.method_entry(metrics, trained)
        bar.note(report.one_line(results["methods"][method]))

    timing["total_seconds"] = bar.elapsed()
    results.update(
        {
            "identified_layers": list(ident["selected"]),
            "identification": {
                "scores": list(ident["scores"]),
                "method": ident.get("method"),
                "score": ident.get("score"),
            },
            "num_layers": p.pretrain.layers,
            "world": p.world.to_dict(),
            "seed": seed,
            "preset": p.to_dict(),
            "base_model": {"path": str(base), "from_cache": cached, **_short(pre_info)},
            "timing": timing,
            "intervals": {name: e["ci95"] for name, e in results["methods"].items()},
        }
    )
    verdicts = {
        name: report.read_verdicts(out / "eval" / name / "predictions.jsonl") for name in results["methods"]
    }
    results["claims"] = report.check_claims(results, verdicts)
    bar.step("report: results.json, README.md, plots")
    write_report(out, results, environment_versions())
    return results


def _short(info: dict) -> dict:
    return {k: v for k, v in info.items() if k != "loss_curve"}


def _pretrain_progress(options: DemoOptions):
    if not options.progress:
        return None
    from tqdm.auto import tqdm

    bar = None

    def update(step: int, total: int, loss: float) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="pretraining", unit="step", leave=False, mininterval=1.0)
        bar.update(1)
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss:.3f}")
        if step == total:
            bar.close()

    return update


def demo_cli(options: DemoOptions) -> int:
    results = run_demo(options)
    from slam_align.synth.report import summary_lines

    for line in summary_lines(results):
        print(line)
    print(f"wrote {Path(options.output) / 'README.md'} and results.json")
    return 0
