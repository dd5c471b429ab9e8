"""The ecosystem switches of ``slam train`` reach their target: ``--packing``,
``--group-by-length``, ``--report-to``, ``--use-liger-kernel``, ``--tokenized-cache``,
``--val-size`` / ``--eval-steps``.

Fast checks (arguments, sampler, cache, refusals) run in-process; the two training runs
(tiny Llama, 2-3 steps) are marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from slam_align.data.prompts import get_prompt
from slam_align.data.token_cache import tokenize_cached
from slam_align.data.training import Example
from slam_align.errors import SlamError
from slam_align.train.train import TrainOptions, train
from slam_align.train.trainer import build_trainer, training_arguments

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "train-samples"


def _examples(n: int = 24) -> list[Example]:
    """Real QAlign questions and answers of very different lengths when present, else fixed ones."""
    en = SHARED / "qalign_gsm8kinstruct_en" / "train.first300.jsonl"
    if en.is_file():
        rows = [json.loads(line) for line in en.read_text(encoding="utf-8").splitlines()[:n]]
        return [Example(instruction=r["question"], output=r["answer"]) for r in rows]
    return [
        Example(instruction=f"What is {i} + 2?", output=f"{i} + 2 = {i + 2}. " * (1 + i % 7))
        for i in range(24)
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "mix.jsonl"
    rows = [{"instruction": e.instruction, "output": e.output} for e in _examples()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _opts(model, data, out, **kw) -> TrainOptions:
    base = dict(
        method="slam", layers="0-1", learning_rate=1e-2, per_device_train_batch_size=4, seed=3, cutoff_len=256
    )
    return TrainOptions(model=str(model), data=[str(data)], output=str(out), progress=False, **{**base, **kw})


def test_switches_reach_the_training_arguments(tmp_path):
    args = training_arguments(
        TrainOptions(
            model="m",
            output=str(tmp_path),
            group_by_length=True,
            report_to="tensorboard",
            val_size=0.1,
            eval_steps=7,
        ),
        tmp_path,
    )
    assert args.train_sampling_strategy == "group_by_length"
    assert args.report_to == ["tensorboard"]
    assert args.eval_strategy == "steps" and args.eval_steps == 7
    plain = training_arguments(TrainOptions(model="m", output=str(tmp_path)), tmp_path)
    assert plain.train_sampling_strategy == "random" and plain.report_to == [] and plain.eval_strategy == "no"
    assert not plain.use_liger_kernel


def test_group_by_length_batches_similar_lengths(tmp_path, tiny_tokenizer):
    """The Trainer's length-grouped sampler is what orders the batches: less padding than random
    (it sorts within mega-batches of up to 50 micro-batches, a quarter of the data here)."""
    from transformers import AutoModelForCausalLM

    from slam_align.data.tokenize import tokenize_examples
    from slam_align.models.tiny import tiny_config

    features, _ = tokenize_examples(_examples(160), tiny_tokenizer, get_prompt("alpaca"), 4096)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", vocab_size=len(tiny_tokenizer)))
    share = {}
    for grouped in (False, True):
        options = TrainOptions(
            model="m", output=str(tmp_path), group_by_length=grouped, progress=False, seed=3
        )
        trainer = build_trainer(model, tiny_tokenizer, features, options, tmp_path)
        real = computed = 0
        for batch in trainer.get_train_dataloader():
            real += int(batch["attention_mask"].sum())
            computed += batch["input_ids"].numel()
        share[grouped] = 1 - real / computed
    assert share[True] < share[False]


def test_tokenized_cache_is_reused_only_for_the_same_inputs(tmp_path, tiny_tokenizer):
    examples, alpaca = _examples(), get_prompt("alpaca")
    first, dropped, status = tokenize_cached(examples, tiny_tokenizer, alpaca, 256, tmp_path)
    assert status["status"] == "miss" and Path(status["path"]).is_dir()
    again, dropped2, status2 = tokenize_cached(examples, tiny_tokenizer, alpaca, 256, tmp_path)
    assert status2 == {"status": "hit", "path": status["path"]}
    assert again == first and dropped2 == dropped
    for changed in (
        (examples, alpaca, 128),
        (examples, get_prompt("llamafactory-default"), 256),
        (examples[1:], alpaca, 256),
    ):
        assert (
            tokenize_cached(changed[0], tiny_tokenizer, changed[1], changed[2], tmp_path)[2]["status"]
            == "miss"
        )
    assert tokenize_cached(examples, tiny_tokenizer, alpaca, 256, None)[2] == {"status": "off"}


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"packing": True, "group_by_length": True}, "--group-by-length is for padded batches"),
        (
            {"use_liger_kernel": True},
            "needs the liger-kernel package" if torch.cuda.is_available() else "needs a CUDA GPU",
        ),
    ],
    ids=["packing-and-grouping", "liger"],
)
def test_impossible_switches_are_refused_before_anything_is_written(
    tmp_path, tiny_llama_dir, data, kw, message
):
    out = tmp_path / "run"
    with pytest.raises(SlamError, match=message):
        train(_opts(tiny_llama_dir, data, out, max_steps=1, **kw))
    assert not out.exists()


def test_packing_an_unverified_architecture_is_one_line(tmp_path, tiny_model_factory, data, cli):
    gpt2 = tiny_model_factory("gpt2")
    out = tmp_path / "run"
    proc = cli(
        "train",
        "--model",
        gpt2,
        "--data",
        data,
        "--output",
        out,
        "--packing",
        "--max-steps",
        "1",
        check=False,
    )
    assert proc.returncode != 0 and not out.exists()
    assert proc.stderr.startswith("error: --packing: model type 'gpt2'")
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_packed_run_with_tracking_cache_and_validation(tmp_path, tiny_llama_dir, data):
    """Padded then packed on the same data, both reporting to TensorBoard through one cache."""
    cache = tmp_path / "cache"
    # cutoff 1024: the real examples (~300-500 tokens with the test tokenizer) are not cut, so
    # padded batches have padding to save
    common = dict(
        max_steps=3,
        val_size=0.25,
        eval_steps=2,
        report_to="tensorboard",
        tokenized_cache=str(cache),
        cutoff_len=1024,
    )
    runs = {}
    for packing in (False, True):
        out = tmp_path / ("packed" if packing else "padded")
        train(_opts(tiny_llama_dir, data, out, packing=packing, **common))
        runs[packing] = (out, json.loads((out / "timing.json").read_text())["stages"]["train"])
        metrics = json.loads((out / "metrics.json").read_text())
        assert [e["step"] for e in metrics["eval_loss_curve"]["train"]] == [2, 3]
        assert all(e["eval_loss"] > 0 for e in metrics["eval_loss_curve"]["train"])
        assert len(metrics["loss_curve"]["train"]) == 3 and (out / "loss.png").is_file()
        assert list(out.rglob("events.out.tfevents.*")), "no TensorBoard event file"
    padded, packed = runs[False][1], runs[True][1]
    assert padded["tokenized_cache"]["status"] == "miss" and packed["tokenized_cache"]["status"] == "hit"
    assert padded["validation_examples"] == packed["validation_examples"] == 6
    assert packed["packing"] and not padded["packing"]
    # Packed rows hold several examples: more real tokens per position computed, and per step.
    assert packed["padding_share"] < padded["padding_share"]
    assert packed["tokens_seen"] > padded["tokens_seen"]
    assert packed["tokens_seen"] <= packed["positions_computed"] <= 3 * 4 * 1024
