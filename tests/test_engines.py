"""Scale-out, proven: DDP, DeepSpeed ZeRO-2 / ZeRO-3 and FSDP2 with 2 CPU processes (gloo).

Every run is a real ``torchrun --nproc_per_node 2 -m slam_align train`` (DDP: ``accelerate
launch`` with ``configs/accelerate/ddp-cpu-2proc.yaml``) of SLAM on a tiny fp32 Llama
(layers 0-1, FFN up/down), with the shipped engine configs. The data set is exactly one
global batch (8 examples: 2 processes x 4, or 1 process x 8), so both runs' steps see the
same examples whatever order the samplers draw them in. For each engine:

(a) one plain SGD step (the update is lr x the gradient) equals the one-process run's to
    1e-6 (measured 7.5e-9; the update itself is about 1e-2), with the same loss and the
    same tokens seen (summed over both processes);
(b) every frozen tensor of ``final/`` is bit-identical to the base (values and dtype);
(c) the delta holds the trained tensors at full size, equal to ``final/``'s;
(d) with AdamW, 12 steps and a checkpoint every 2, a launch killed (``kill -9`` of the
    launcher and both workers) after checkpoint 2 and continued with ``--resume`` ends
    bit-identical to the uninterrupted run.

A launch whose processes train their own copies (CPU "DDP" before accelerate was told that
the run is on the CPU: 9.5e-3 away, the loss logged twice too high) fails (a);
``test_the_check_detects_unshared_training`` shows on the step such a process makes that the
check can fail. Time on 2 cores: 4 min 11 s for the file (6 min 16 s on a busy machine, load
average 6.5): 17 launches of 2 processes, mostly Python imports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil  # accelerate's dependency
import pytest
import torch
from model_files import model_tensors as _tensors
from safetensors.torch import load_file

from slam_align.errors import SlamError
from slam_align.train.train import TrainOptions, train

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
TRAINED = {f"model.layers.{i}.mlp.{p}.weight" for i in (0, 1) for p in ("up_proj", "down_proj")}
STEPS, SAVE_EVERY, KILL_AFTER = 12, 2, 2
# Two processes vs one: the same arithmetic summed in another order (measured: 7.5e-9).
TOLERANCE = 1e-6


def _require_deepspeed() -> None:
    """DeepSpeed is an optional extra: its tests skip without it, except in CI (which installs
    it), where they run and fail."""
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        if not os.environ.get("CI"):
            pytest.skip('DeepSpeed is not installed (pip install "slam-align[deepspeed]")')


ENGINES = {
    "ddp": [],
    "zero2": ["--deepspeed", str(CONFIGS / "deepspeed" / "zero2.json")],
    "zero3": ["--deepspeed", str(CONFIGS / "deepspeed" / "zero3.json")],
    "fsdp2": ["--fsdp", "full_shard auto_wrap", "--fsdp-config", str(CONFIGS / "fsdp" / "fsdp2.json")],
}
LABELS = {"ddp": "DDP", "zero2": "DeepSpeed ZeRO-2", "zero3": "DeepSpeed ZeRO-3", "fsdp2": "FSDP2"}


def _max_diff(a: dict, b: dict, names) -> float:
    return max((a[n].double() - b[n].double()).abs().max().item() for n in names)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    rows = [
        {
            "instruction": f"What is {i} + {i + 3}?",
            "output": f"{i} + {i + 3} = {2 * i + 3}. The answer is {2 * i + 3}.",
        }
        for i in range(8)
    ]
    path = tmp_path_factory.mktemp("engine-data") / "eight.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _options(base: Path, data: Path, out: Path, batch: int, **extra) -> dict:
    return {
        "model": str(base), "data": [str(data)], "output": str(out), "method": "slam", "layers": "0-1",
        "max_steps": STEPS, "save_steps": SAVE_EVERY, "optim": "adamw_torch", "learning_rate": 1e-2,
        "lr_scheduler_type": "constant", "per_device_train_batch_size": batch, "seed": 3, "cutoff_len": 256,
        "progress": False, **extra,
    }  # fmt: skip


def _argv(options: dict) -> list[str]:
    argv = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            argv += [flag, ",".join(value) if isinstance(value, list) else str(value)]
    return argv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], accelerate_config: Path | None = None) -> list[str]:
    if accelerate_config is not None:  # the shipped accelerate config, as a user runs it
        head = ["-m", "accelerate.commands.launch", "--config_file", str(accelerate_config)]
        head += ["--main_process_port", str(_free_port())]
    else:  # --standalone: a free port (other test runs on the machine may use the default one)
        head = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    return [sys.executable, *head, "-m", "slam_align", "train", *args]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=_env())
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def _sgd(base: Path, data: Path, out: Path, batch: int) -> dict:
    """One plain SGD step (lr 0.5) on a global batch holding the whole data set: the update is
    lr x the gradient, so gradients that are not averaged over both halves show at once."""
    return _options(base, data, out, batch, optim="sgd", learning_rate=0.5, max_steps=1, save_steps=0)


@pytest.fixture(scope="module")
def reference(tiny_model_factory, data, tmp_path_factory):
    """The one-process run: micro-batch 8 = the whole data set."""
    base = tiny_model_factory("llama")
    out = tmp_path_factory.mktemp("reference") / "single"
    train(TrainOptions(**_sgd(base, data, out, 8)))
    return base, out


@pytest.fixture(scope="module")
def sgd_configs(tmp_path_factory) -> dict:
    """The shipped DeepSpeed configs, allowing the plain SGD of the exact check (DeepSpeed
    accepts only optimizers it tested, e.g. AdamW, otherwise)."""
    folder, engines = tmp_path_factory.mktemp("ds"), {}
    for name, args in ENGINES.items():
        if "--deepspeed" in args:
            config = json.loads(Path(args[1]).read_text())
            config["zero_allow_untested_optimizer"] = True
            (folder / f"{name}.json").write_text(json.dumps(config))
            args = ["--deepspeed", str(folder / f"{name}.json")]
        engines[name] = args
    return engines


def _check_final(out: Path, base: Path) -> dict:
    """(b) frozen tensors bit-identical to the base, (c) the delta complete and equal to final/."""
    final, base_t = _tensors(out / "final"), _tensors(base)
    assert set(final) == set(base_t)
    changed = {
        k for k in base_t if not (final[k].dtype == base_t[k].dtype and torch.equal(final[k], base_t[k]))
    }
    assert changed == TRAINED
    delta = load_file(str(out / "final" / "slam_delta.safetensors"))
    assert set(delta) == TRAINED
    assert all(delta[k].shape == base_t[k].shape and torch.equal(delta[k], final[k]) for k in TRAINED)
    return final


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(ENGINES))
def test_two_processes_equal_one(engine, reference, sgd_configs, data, tmp_path):
    """(a) one SGD step of 2 processes x 4 examples = one process x 8; (b) and (c)."""
    from transformers import AutoModelForCausalLM

    if engine.startswith("zero"):
        _require_deepspeed()
    base, ref = reference
    out = tmp_path / engine
    config = CONFIGS / "accelerate" / "ddp-cpu-2proc.yaml" if engine == "ddp" else None
    _run(_launch(_argv(_sgd(base, data, out, 4)) + sgd_configs[engine], accelerate_config=config))
    timing, ref_timing = (json.loads((d / "timing.json").read_text()) for d in (out, ref))
    assert timing["world_size"] == 2 and timing["engine"] == LABELS[engine] and timing["steps"] == 1
    assert timing["stages"]["train"]["loaded_partitioned"] is (engine == "zero3")
    assert timing["tokens_seen"] == ref_timing["tokens_seen"]  # summed over both processes, not one's half
    loss, ref_loss = (t["stages"]["train"]["train_loss"] for t in (timing, ref_timing))
    assert abs(loss - ref_loss) < 1e-5  # the mean over both processes' tokens, not one's
    final, ref_final = _check_final(out, base), _tensors(ref / "final")
    assert _max_diff(ref_final, _tensors(base), TRAINED) > 100 * TOLERANCE  # the update is far above it
    assert _max_diff(final, ref_final, TRAINED) < TOLERANCE
    assert AutoModelForCausalLM.from_pretrained(str(out / "final")).dtype == torch.float32


@pytest.mark.slow
def test_the_check_detects_unshared_training(reference, data, tmp_path):
    """Not data-parallel, each process steps on its own 4 examples alone: one process with
    micro-batch 4 makes that step, and the equivalence check above rejects it."""
    base, ref = reference
    out = tmp_path / "alone"
    train(TrainOptions(**_sgd(base, data, out, 4)))
    assert _max_diff(_tensors(out / "final"), _tensors(ref / "final"), TRAINED) > 100 * TOLERANCE


@pytest.mark.slow
@pytest.mark.parametrize("engine", list(ENGINES))
def test_resume_after_kill_ends_where_the_straight_run_ends(engine, tiny_model_factory, data, tmp_path):
    """(d) AdamW (optimizer state in the checkpoints), kill -9 of the whole launch after a
    checkpoint, --resume: bit-identical to the uninterrupted run."""
    if engine.startswith("zero"):
        _require_deepspeed()
    base = tiny_model_factory("llama")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _run(_launch(_argv(_options(base, data, straight, 4)) + ENGINES[engine]))
    proc = subprocess.Popen(
        _launch(_argv(_options(base, data, killed, 4)) + ENGINES[engine]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    deadline = time.time() + 300
    while not (killed / f"checkpoint-{KILL_AFTER}" / "trainer_state.json").is_file():
        assert proc.poll() is None, "training ended before the test could kill it"
        assert time.time() < deadline
        time.sleep(0.02)
    # The launcher and both workers (torchrun starts them in sessions of their own), by pid.
    launch = psutil.Process(proc.pid)
    tree = [launch, *launch.children(recursive=True)]
    for p in tree:
        p.send_signal(signal.SIGKILL)
    proc.wait()
    psutil.wait_procs(tree, timeout=60)
    assert not (killed / "final").exists()
    _run(_launch(_argv(_options(base, data, killed, 4, resume=True)) + ENGINES[engine]))
    a, b = _check_final(straight, base), _check_final(killed, base)
    assert all(torch.equal(a[k], b[k]) for k in a)
    timing = json.loads((killed / "timing.json").read_text())
    assert timing["stages"]["train"]["resumed_from"] and timing["steps"] == STEPS


@pytest.mark.slow
def test_zero3_full_and_two_stage_finish(tiny_model_factory, data, tmp_path):
    """ZeRO-3 full fine-tuning and two-stage (stage 2 loads stage 1's model partitioned too):
    final/ is a complete model that from_pretrained loads, different from the base everywhere."""
    from transformers import AutoModelForCausalLM

    _require_deepspeed()
    base = tiny_model_factory("llama")
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    mix = tmp_path / "mix.jsonl"
    mix.write_text(
        "".join(json.dumps({**r, "kind": k}) + "\n" for r in rows for k in ("alignment", "response")),
        encoding="utf-8",
    )
    out = tmp_path / "two"
    options = _options(base, mix, out, 4, method="two-stage", max_steps=2, save_steps=0)
    _run(_launch(_argv(options) + ENGINES["zero3"]))
    timing = json.loads((out / "timing.json").read_text())
    assert list(timing["stages"]) == ["stage1", "stage2"] and timing["world_size"] == 2
    assert all(s["loaded_partitioned"] for s in timing["stages"].values())
    model = AutoModelForCausalLM.from_pretrained(str(out / "final"))
    stage1, final, base_t = _tensors(out / "stage1" / "final"), _tensors(out / "final"), _tensors(base)
    assert sum(p.numel() for p in model.parameters()) == timing["total_params"] == timing["trainable_params"]
    assert set(final) == set(base_t) and all(final[k].shape == base_t[k].shape for k in base_t)
    moved = [
        k for k in base_t if not torch.equal(final[k], stage1[k]) and not torch.equal(stage1[k], base_t[k])
    ]
    assert len(moved) > len(base_t) // 2  # both stages trained (nearly) every tensor


# ----------------------------------------------------------------------------- one line, before anything


def _opts(tmp_path, **kw) -> TrainOptions:
    return TrainOptions(model=str(tmp_path / "m"), output=str(tmp_path / "out"), data=["x.jsonl"], **kw)


def test_impossible_engine_options_are_one_line(tmp_path, monkeypatch):
    from slam_align.train.engines import resolve_engine

    _require_deepspeed()
    z3 = json.loads((CONFIGS / "deepspeed" / "zero3.json").read_text())
    z3["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] = False
    (tmp_path / "z3.json").write_text(json.dumps(z3))
    (tmp_path / "bad.json").write_text("{not json")
    cases = [
        (dict(deepspeed=str(CONFIGS / "deepspeed" / "zero2.json"), fsdp="full_shard"), "pick one"),
        (dict(fsdp="full_shard"), "launch with torchrun"),
        (dict(fsdp_config=str(CONFIGS / "fsdp" / "fsdp2.json")), "needs --fsdp"),
        (dict(deepspeed=str(tmp_path / "z3.json")), "stage3_gather_16bit_weights_on_model_save"),
        (dict(deepspeed=str(tmp_path / "bad.json")), "not valid JSON"),
        (dict(deepspeed=str(CONFIGS / "deepspeed" / "zero3.json"), method="lora"), "lora is not supported"),
    ]
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for kw, message in cases:
        with pytest.raises(SlamError, match=message):
            resolve_engine(_opts(tmp_path, **kw))
    monkeypatch.setenv("WORLD_SIZE", "2")
    (tmp_path / "fsdp1.json").write_text(json.dumps({"version": 1}))
    with pytest.raises(SlamError, match="FSDP1 is not supported on CPU processes"):
        resolve_engine(_opts(tmp_path, fsdp="full_shard", fsdp_config=str(tmp_path / "fsdp1.json")))
    engine = resolve_engine(_opts(tmp_path, deepspeed=str(CONFIGS / "deepspeed" / "zero3.json")))
    assert engine.sharded and engine.zero_stage == 3 and engine.processes == 2


def test_a_launch_that_would_not_be_wrapped_is_refused():
    """What CPU 'DDP' was: launched as 2 processes, but the Trainer not distributed."""
    from transformers.training_args import ParallelMode

    from slam_align.train.engines import Engine, attach, check_trainer

    engine = Engine("ddp", processes=2)
    lone = SimpleNamespace(world_size=1, parallel_mode=ParallelMode.NOT_DISTRIBUTED)
    with pytest.raises(SlamError, match="refusing to train: launched as 2 processes, but the Trainer sees 1"):
        attach(lone, engine)
    from accelerate.utils import DistributedType

    acc = SimpleNamespace(distributed_type=DistributedType.NO, num_processes=1)
    trainer = SimpleNamespace(accelerator=acc, is_deepspeed_enabled=False, is_fsdp_enabled=False)
    with pytest.raises(SlamError, match="each process would train its own copy"):
        check_trainer(trainer, engine)
    acc.distributed_type = DistributedType.MULTI_CPU
    with pytest.raises(SlamError, match="FSDP was asked for but accelerate set up MULTI_CPU"):
        check_trainer(trainer, Engine("fsdp", processes=2, fsdp_version=2))


def test_deepspeed_hidden_size_autos_are_filled_before_loading():
    from transformers import LlamaConfig

    from slam_align.train.engines import deepspeed_config

    z3 = json.loads((CONFIGS / "deepspeed" / "zero3.json").read_text())
    filled = deepspeed_config(z3, LlamaConfig(hidden_size=64))["zero_optimization"]
    assert filled["reduce_bucket_size"] == 64 * 64 and filled["stage3_param_persistence_threshold"] == 640
    assert filled["stage3_prefetch_bucket_size"] == int(0.9 * 64 * 64)
    assert z3["zero_optimization"]["reduce_bucket_size"] == "auto"  # the caller's dict is left alone
