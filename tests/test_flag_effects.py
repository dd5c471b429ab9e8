"""Flags that had no test of their own: each changes what its --help says it changes.

Cheap, in process: the option is followed to where it acts (the Trainer's arguments, the
data a stage reads, the built mixture, the plan's verdict, the inspected examples).
``tests/test_flag_coverage.py`` maps every flag of every command to the test proving it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slam_align.data.build import BuildOptions, build
from slam_align.data.inspect import InspectOptions, inspect
from slam_align.models.plan import PlanOptions, plan
from slam_align.train.train import TrainOptions, _stage_data


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(n: int, lang: str = "en") -> list[dict]:
    return [{"instruction": f"q{i} {lang}", "output": f"a{i}", "lang": lang} for i in range(n)]


def test_trainer_arguments_carry_the_optimisation_flags(tmp_path, tiny_llama_dir):
    from slam_align.train.trainer import training_arguments

    opts = dict(model=str(tiny_llama_dir), output=str(tmp_path / "o"), data=["x"])
    default = training_arguments(TrainOptions(**opts), tmp_path / "a")
    flags = dict(
        lr_scheduler_type="linear",
        optim="adamw_torch",
        max_grad_norm=0.25,
        per_device_train_batch_size=3,
        gradient_accumulation_steps=5,
        save_steps=2,
        save_total_limit=2,
        logging_steps=7,
    )
    args = training_arguments(TrainOptions(**opts, **flags), tmp_path / "b")
    assert str(args.lr_scheduler_type.value) == "linear" != str(default.lr_scheduler_type.value)
    assert str(args.optim.value) == "adamw_torch" != str(default.optim.value)
    assert (args.max_grad_norm, default.max_grad_norm) == (0.25, 1.0)
    assert (args.per_device_train_batch_size, default.per_device_train_batch_size) == (3, 4)
    assert (args.gradient_accumulation_steps, default.gradient_accumulation_steps) == (5, 1)
    assert (args.save_total_limit, default.save_total_limit) == (2, None)
    assert (args.logging_steps, default.logging_steps) == (7, 1)


def test_limit_field_map_and_stage_files_choose_the_training_data(tmp_path):
    data = _jsonl(tmp_path / "d.jsonl", _rows(6))
    opts = dict(model="m", output=str(tmp_path / "o"))
    assert len(_stage_data(TrainOptions(**opts, data=[str(data)]), ("train",))["train"]) == 6
    assert len(_stage_data(TrainOptions(**opts, data=[str(data)], limit=2), ("train",))["train"]) == 2
    renamed = _jsonl(tmp_path / "r.jsonl", [{"query": "q", "response": "a"}])
    (example,) = _stage_data(
        TrainOptions(**opts, data=[str(renamed)], field_map=["instruction=query", "output=response"]),
        ("train",),
    )["train"]
    assert (example.instruction, example.output) == ("q", "a")
    s1 = _jsonl(tmp_path / "s1.jsonl", _rows(2, "de"))
    s2 = _jsonl(tmp_path / "s2.jsonl", _rows(3, "en"))
    stages = _stage_data(
        TrainOptions(**opts, method="two-stage", stage1_data=[str(s1)], stage2_data=[str(s2)]),
        ("stage1", "stage2"),
    )
    assert [e.lang for e in stages["stage1"]] == ["de", "de"] and len(stages["stage2"]) == 3


def test_plan_gpu_memory_decides_fits(tmp_path, tiny_llama_dir):
    small = plan(PlanOptions(model=str(tiny_llama_dir), memory=True, gpu_memory_gib=1e-6, layers="0-1"))
    large = plan(PlanOptions(model=str(tiny_llama_dir), memory=True, gpu_memory_gib=80, layers="0-1"))
    assert small["memory"]["fits"] is False and large["memory"]["fits"] is True


def _build(tmp_path: Path, name: str, **kw) -> tuple[list[dict], str]:
    rows = _rows(8) + _rows(3)  # three duplicates
    src = _jsonl(tmp_path / "src.jsonl", rows)
    out = tmp_path / name
    build(
        BuildOptions(
            output=str(out),
            sources=[{"name": "toy", "path": str(src), "type": "alpaca"}],
            langs=["en"],
            decontaminate=[],
            **kw,
        )
    )
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    return rows, (out / "README.md").read_text()


def test_build_dedup_shuffle_and_description(tmp_path):
    rows, readme = _build(tmp_path, "a", shuffle=False, description="A toy mixture for the test.")
    assert [r["instruction"] for r in rows] == [f"q{i} en" for i in range(8)]  # deduplicated, in order
    assert "A toy mixture for the test." in readme
    kept, _ = _build(tmp_path, "b", shuffle=False, dedup=False)
    assert len(kept) == 11
    shuffled, readme = _build(tmp_path, "c", seed=3)
    assert sorted(r["instruction"] for r in shuffled) == sorted(r["instruction"] for r in rows)
    assert [r["instruction"] for r in shuffled] != [r["instruction"] for r in rows]
    assert "A toy mixture" not in readme


def test_inspect_file_n_random_and_tokenizer(tmp_path, tiny_tokenizer_dir, tiny_tokenizer):
    data = _jsonl(tmp_path / "d.jsonl", _rows(12))
    first = inspect(InspectOptions(file=str(data), n=2))
    assert [e["target"].strip() for e in first["examples"]] == ["a0", "a1"] and first["rows"] == 12
    picked = inspect(InspectOptions(file=str(data), n=4, random=True, seed=1))["examples"]
    assert len(picked) == 4 and [e["target"].strip() for e in picked] != ["a0", "a1", "a2", "a3"]
    assert "tokens" not in first["examples"][0]
    counted = inspect(InspectOptions(file=str(data), n=1, tokenizer=str(tiny_tokenizer_dir)))["examples"][0]
    assert counted["tokens"]["target"] == len(
        tiny_tokenizer(counted["target"], add_special_tokens=False)["input_ids"]
    )
    assert counted["tokens"]["prompt"] > 0


@pytest.mark.slow  # trains a tiny model twice (about 10 s)
def test_save_delta_decides_the_delta_file(tmp_path, tiny_llama_dir):
    from slam_align.train.train import train

    data = _jsonl(tmp_path / "d.jsonl", _rows(4))
    common = dict(model=str(tiny_llama_dir), data=[str(data)], max_steps=1, layers="0", progress=False)
    train(TrainOptions(**common, output=str(tmp_path / "with")))
    train(TrainOptions(**common, output=str(tmp_path / "without"), save_delta=False))
    assert (tmp_path / "with" / "final" / "slam_delta.safetensors").is_file()
    assert not (tmp_path / "without" / "final" / "slam_delta.safetensors").exists()


def test_eval_dtype_decides_the_weights_dtype(tiny_llama_dir):
    import torch

    from slam_align.evaluate.generate import load_model_for_generation

    for name, dtype in (("bf16", torch.bfloat16), ("fp32", torch.float32), ("auto", torch.float32)):
        model = load_model_for_generation(str(tiny_llama_dir), dtype=name, device="cpu")
        assert next(model.parameters()).dtype == dtype, name


def test_identify_threshold_max_length_and_batch_size(tmp_path, tiny_llama_dir):
    from slam_align.identify.identify import IdentifyOptions, identify

    questions = [
        "Tom has 3 apples and buys 2 more at the shop. How many?",
        "A box holds 4 pens.",
        "Sam eats 1 egg.",
    ]
    bench = _jsonl(
        tmp_path / "bench.jsonl",
        [
            {"lang": lang, "index": i, "question": f"({lang}) {q}", "answer": i}
            for lang in ("en", "de")
            for i, q in enumerate(questions)
        ],
    )

    def run(name, **kw):
        return identify(
            IdentifyOptions(
                model=str(tiny_llama_dir),
                output=str(tmp_path / name),
                benchmark=f"jsonl:{bench}",
                langs=["en", "de"],
                top_k=2,
                plots=False,
                progress=False,
                **kw,
            )
        )

    base = run("base")
    short = run("short", max_length=4)
    assert all(short["num_tokens"][lang] <= 3 * 4 < base["num_tokens"][lang] for lang in ("en", "de"))
    strict = run("strict", threshold=0.5)
    assert strict["threshold"] == 0.5
    assert strict["activation"]["activated_count"] != base["activation"]["activated_count"]
    one_by_one = run("one", batch_size=1)  # batching only groups questions: same statistics
    assert one_by_one["scores"] == pytest.approx(base["scores"], rel=1e-4, abs=1e-9)
