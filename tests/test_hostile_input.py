"""Hostile but realistic invocations of every command, as real ``python -m slam_align`` subprocesses.

Each row of ``CASES`` is one invocation that must fail: a non-zero exit, exactly one
``error:`` line on stderr (the last one; no Python traceback), naming the value or file at
fault. Around them all, a tree of decoy files (someone's notes, a foreign directory, an
earlier run of another command, an earlier run of the same command that a failing
``--overwrite`` must not destroy) is snapshot by bytes and mtime and must be identical
afterwards. The cases run four at a time (most fail at validation, so the cost is Python's
start-up): 440 s measured on 2 cores shared with other jobs (load 6-10), hence ``slow``.

The classes: bad paths, corrupt / non-UTF-8 files, wrong types, NaN / inf / negative / zero,
output equal to an input, output below a file, a foreign non-empty output with --overwrite,
a read-only output (a read-only bind mount as root, chmod otherwise), a full disk (a
filled 256 KiB tmpfs, as root), a file-size limit (RLIMIT_FSIZE: EFBIG), and a failed run followed by the corrected
command, which must work without --overwrite (``test_failed_run_never_blocks_the_fix``).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO, run_cli

pytestmark = pytest.mark.slow

FSIZE_BYTES = 512  # small enough that every command's first real write of results fails


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # {P}: the world's folder, {M}: the tiny model
    names: str  # the error line must contain this (the value, flag or file at fault)
    fsize: bool = False  # run under a file-size limit
    env: dict = field(default_factory=dict)
    needs: str = ""  # "readonly" / "full": skipped where such a folder cannot be made


def c(id: str, cmd: str, names: str, **kw) -> Case:
    return Case(id, tuple(cmd.split()), names, **kw)


CASES = [
    # --- plan ----------------------------------------------------------------------------
    c("plan-missing-model", "plan --model {P}/no-model", "no-model"),
    c("plan-lora-r-negative", "plan --model {M} --method lora --lora-r -1", "lora-r"),
    c("plan-gpu-memory-nan", "plan --model {M} --memory --gpu-memory-gib nan", "gpu-memory-gib"),
    c("plan-gpu-memory-negative", "plan --model {M} --memory --gpu-memory-gib -5", "gpu-memory-gib"),
    c("plan-seq-len-zero", "plan --model {M} --memory --seq-len 0", "seq-len"),
    c("plan-gpus-word", "plan --model {M} --gpus two", "gpus"),
    c("plan-layer-out-of-range", "plan --model {M} --layers 2-9", "layer"),
    c("plan-config-not-utf8", "plan --model {P}/latin1/config.json", "config.json"),
    c("plan-yaml-not-utf8", "plan {P}/latin1.yaml --model {M}", "latin1.yaml"),
    c("plan-yaml-list", "plan {P}/list.yaml", "list.yaml"),
    # --- data build ----------------------------------------------------------------------
    c(
        "build-foreign-overwrite",
        "data build {P}/build.yaml --output {P}/decoys/foreign --overwrite",
        "foreign",
    ),
    c(
        "build-other-command-run",
        "data build {P}/build.yaml --output {P}/decoys/identify-run --overwrite",
        "slam identify",
    ),
    c("build-below-file", "data build {P}/build.yaml --output {P}/decoys/notes.txt/sub", "notes.txt"),
    c("build-missing-source", "data build {P}/build-missing.yaml --output {P}/out/b1", "no-such.jsonl"),
    c("build-source-not-utf8", "data build {P}/build-latin1.yaml --output {P}/out/b2", "latin1.jsonl"),
    c("build-sources-string", "data build --output {P}/out/b3 --sources x", "sources"),
    c("build-seed-nan", "data build {P}/build.yaml --output {P}/out/b4 --seed nan", "seed"),
    c("build-readonly", "data build {P}/build.yaml --output {P}/ro/b", "ro/b", needs="readonly"),
    c("build-file-size-limit", "data build {P}/build.yaml --output {P}/out/b5", "b5", fsize=True),
    c("build-disk-full", "data build {P}/build.yaml --output {P}/full/b", "full/b", needs="full"),
    # --- data inspect --------------------------------------------------------------------
    c("inspect-missing-file", "data inspect --file {P}/no-such.jsonl", "no-such.jsonl"),
    c("inspect-not-utf8", "data inspect --file {P}/latin1.jsonl", "latin1.jsonl"),
    c("inspect-missing-tokenizer", "data inspect --file {P}/train.jsonl --tokenizer {P}/no-tok", "no-tok"),
    c("inspect-n-zero", "data inspect --file {P}/train.jsonl -n 0", "'n'"),
    c("inspect-unknown-prompt", "data inspect --file {P}/train.jsonl --prompt frob", "frob"),
    # --- identify ------------------------------------------------------------------------
    c("identify-threshold-nan", "identify --model {M} --output {P}/out/i1 --threshold nan", "threshold"),
    c("identify-device", "identify --model {M} --output {P}/out/i2 {BENCH} --device frob", "frob"),
    c("identify-top-k-zero", "identify --model {M} --output {P}/out/i3 --top-k 0", "top-k"),
    c("identify-missing-model", "identify --model {P}/no-model --output {P}/out/i4 {BENCH}", "no-model"),
    c(
        "identify-foreign-overwrite",
        "identify --model {M} --output {P}/decoys/foreign --overwrite {BENCH}",
        "foreign",
    ),
    c(
        "identify-train-run",
        "identify --model {M} --output {P}/decoys/train-run --overwrite {BENCH}",
        "slam train",
    ),
    c(
        "identify-missing-data-dir",
        "identify --model {M} --output {P}/out/i5 --data-dir {P}/no-dir",
        "no-dir",
    ),
    c(
        "identify-readonly",
        "identify --model {M} --output {P}/ro/i {BENCH} --top-k 2",
        "ro/i",
        needs="readonly",
    ),
    c(
        "identify-file-size-limit",
        "identify --model {M} --output {P}/out/i6 {BENCH} --top-k 2",
        "i6",
        fsize=True,
    ),
    c(
        "identify-disk-full",
        "identify --model {M} --output {P}/full/i {BENCH} --top-k 2",
        "full/i",
        needs="full",
    ),
    # --- train ---------------------------------------------------------------------------
    c(
        "train-typo-model-overwrite",
        "train --model {P}/typo --output {P}/decoys/train-run --overwrite {DATA}",
        "typo",
    ),
    c("train-lr-inf", "train --model {M} --output {P}/out/t1 {DATA} --learning-rate inf", "learning-rate"),
    c("train-lr-nan", "train --model {M} --output {P}/out/t2 {DATA} --learning-rate nan", "learning-rate"),
    c(
        "train-epochs-negative",
        "train --model {M} --output {P}/out/t3 {DATA} --num-train-epochs -1",
        "num-train-epochs",
    ),
    c("train-limit-zero", "train --model {M} --output {P}/out/t4 {DATA} --limit 0", "limit"),
    c(
        "train-batch-zero",
        "train --model {M} --output {P}/out/t5 {DATA} --per-device-train-batch-size 0",
        "per-device-train-batch-size",
    ),
    c("train-scheduler", "train --model {M} --output {P}/out/t6 {DATA} --lr-scheduler-type frob", "cosine"),
    c("train-optimizer", "train --model {M} --output {P}/out/t7 {DATA} --optim frob", "adamw_torch"),
    c("train-lora-r-zero", "train --model {M} --output {P}/out/t8 {DATA} --method lora --lora-r 0", "lora-r"),
    c("train-warmup-two", "train --model {M} --output {P}/out/t9 {DATA} --warmup-ratio 2", "warmup-ratio"),
    c(
        "train-max-steps-zero",
        "train --model {M} --output {P}/out/t10 --data {P}/train.jsonl --max-steps 0",
        "max-steps",
    ),
    c(
        "train-data-not-utf8",
        "train --model {M} --output {P}/out/t11 --data {P}/latin1.jsonl",
        "latin1.jsonl",
    ),
    c(
        "train-data-missing",
        "train --model {M} --output {P}/out/t12 --data {P}/no-such.jsonl",
        "no-such.jsonl",
    ),
    c("train-data-no-output", "train --model {M} --output {P}/out/t13 --data {P}/no-output.jsonl", "output"),
    c("train-yaml-not-utf8", "train {P}/latin1.yaml --model {M} --output {P}/out/t14", "latin1.yaml"),
    c("train-below-file", "train --model {M} --output {P}/decoys/notes.txt/run {DATA}", "notes.txt"),
    c(
        "train-foreign-overwrite",
        "train --model {M} --output {P}/decoys/foreign --overwrite {DATA}",
        "foreign",
    ),
    c(
        "train-deepspeed-missing-config",
        "train --model {M} --output {P}/out/t15 {DATA} --deepspeed {P}/no-ds.json",
        "no-ds.json",
    ),
    c(
        "train-deepspeed-not-installed",
        "train --model {M} --output {P}/out/t16 {DATA} --deepspeed {REPO}/configs/deepspeed/zero2.json",
        "DeepSpeed is not installed",
        env={"PYTHONPATH": "{P}/no-deepspeed"},
    ),
    c("train-readonly", "train --model {M} --output {P}/ro/t {DATA}", "ro/t", needs="readonly"),
    c("train-file-size-limit", "train --model {M} --output {P}/out/t17 {DATA}", "t17", fsize=True),
    c("train-disk-full", "train --model {M} --output {P}/full/t {DATA}", "full/t", needs="full"),
    # --- merge ---------------------------------------------------------------------------
    c(
        "merge-truncated-delta",
        "merge --base {M} --delta {P}/delta/truncated.safetensors --output {P}/out/m1",
        "truncated.safetensors",
    ),
    c(
        "merge-no-manifest",
        "merge --base {M} --delta {P}/delta/no-manifest.safetensors --output {P}/out/m2",
        "no-manifest.safetensors",
    ),
    c(
        "merge-corrupt-manifest",
        "merge --base {M} --delta {P}/delta/bad-manifest.safetensors --output {P}/out/m3",
        "bad-manifest.safetensors",
    ),
    c("merge-missing-delta", "merge --base {M} --delta {P}/no-delta --output {P}/out/m4", "no-delta"),
    c(
        "merge-foreign-overwrite",
        "merge --base {M} --delta {P}/delta/bad-manifest.safetensors --output {P}/decoys/foreign --overwrite",
        "bad-manifest",
    ),
    # --- eval ----------------------------------------------------------------------------
    c("eval-unknown-benchmark", "eval --model {M} --output {P}/out/e1 --benchmark frob", "frob"),
    c("eval-unknown-language", "eval --model {M} --output {P}/out/e2 {BENCH} --langs xx", "xx"),
    c("eval-limit-zero", "eval --model {M} --output {P}/out/e3 {BENCH} --limit 0", "limit"),
    c("eval-device", "eval --model {M} --output {P}/out/e4 {BENCH} --device frob", "frob"),
    c("eval-dtype", "eval --model {M} --output {P}/out/e5 {BENCH} --dtype frob", "frob"),
    c("eval-batch-zero", "eval --model {M} --output {P}/out/e6 {BENCH} --batch-size 0", "batch-size"),
    c("eval-missing-model", "eval --model {P}/no-model --output {P}/out/e7 {BENCH}", "no-model"),
    c(
        "eval-benchmark-not-utf8",
        "eval --model {M} --output {P}/out/e8 --benchmark jsonl:{P}/latin1.jsonl",
        "latin1.jsonl",
    ),
    c(
        "eval-foreign-overwrite",
        "eval --model {M} --output {P}/decoys/foreign --overwrite {BENCH}",
        "foreign",
    ),
    c("eval-readonly", "eval --model {M} --output {P}/ro/e {BENCH}", "ro/e", needs="readonly"),
    c("eval-disk-full", "eval --model {M} --output {P}/full/e {BENCH}", "full/e", needs="full"),
    # --- score ---------------------------------------------------------------------------
    c(
        "score-output-is-input",
        "score --predictions {P}/decoys/predictions.jsonl --output {P}/decoys/predictions.jsonl",
        "predictions.jsonl",
    ),
    c(
        "score-output-foreign-file",
        "score --predictions {P}/decoys/predictions.jsonl --output {P}/decoys/notes.txt",
        "notes.txt",
    ),
    c(
        "score-output-below-file",
        "score --predictions {P}/decoys/predictions.jsonl --output {P}/decoys/notes.txt/m.json",
        "notes.txt",
    ),
    c("score-gold-nan", "score --predictions {P}/pred-nan.jsonl", "nan"),
    c("score-gold-inf", "score --predictions {P}/pred-inf.jsonl", "inf"),
    c("score-lang-list", "score --predictions {P}/pred-list-lang.jsonl", "lang"),
    c("score-not-utf8", "score --predictions {P}/latin1.jsonl", "latin1.jsonl"),
    c("score-missing", "score --predictions {P}/no-such.jsonl", "no-such.jsonl"),
    c(
        "score-bootstrap-negative",
        "score --predictions {P}/decoys/predictions.jsonl --bootstrap -1",
        "bootstrap",
    ),
    c(
        "score-readonly",
        "score --predictions {P}/decoys/predictions.jsonl --output {P}/ro/m.json",
        "ro/m.json",
        needs="readonly",
    ),
    c(
        "score-file-size-limit",
        "score --predictions {P}/decoys/predictions.jsonl --output {P}/out/s.json",
        "s.json",
        fsize=True,
    ),
    c(
        "score-disk-full",
        "score --predictions {P}/decoys/predictions.jsonl --output {P}/full/s.json",
        "s.json",
        needs="full",
    ),
    # --- compare -------------------------------------------------------------------------
    c("compare-bad-metrics", "compare {P}/bad-eval", "metrics.json"),
    c("compare-bad-demo-results", "compare {P}/bad-demo", "results.json"),
    c("compare-missing-run", "compare {P}/no-run", "no-run"),
    c(
        "compare-output-is-input",
        "compare {P}/decoys/eval-run --output {P}/decoys/eval-run --overwrite",
        "eval-run",
    ),
    c(
        "compare-foreign-overwrite",
        "compare {P}/decoys/eval-run --output {P}/decoys/foreign --overwrite",
        "foreign",
    ),
    c("compare-readonly", "compare {P}/decoys/eval-run --output {P}/ro/c", "ro/c", needs="readonly"),
    # --- demo ----------------------------------------------------------------------------
    c(
        "demo-cache-dir-is-file",
        "demo --quick --output {P}/out/d1 --cache-dir {P}/decoys/notes.txt",
        "notes.txt",
    ),
    c("demo-threads-zero", "demo --quick --output {P}/out/d2 --threads 0", "threads"),
    c("demo-top-k-zero", "demo --quick --output {P}/out/d3 --top-k 0", "top-k"),
    c("demo-unknown-method", "demo --quick --output {P}/out/d4 --methods frob", "frob"),
    c("demo-foreign-overwrite", "demo --quick --output {P}/decoys/foreign --overwrite", "foreign"),
    c("demo-readonly", "demo --quick --output {P}/ro/d", "ro/d", needs="readonly"),
]
# Options that every train / eval / identify case shares (cheap, deterministic runs).
EXPAND = {
    "{DATA}": "--data {P}/train.jsonl --max-steps 1 --layers 0-1 --no-progress",
    "{BENCH}": "--benchmark jsonl:{P}/bench.jsonl --langs en,de --max-new-tokens 2 --bootstrap 0 --no-progress",
}
EXPAND_IDENTIFY = "--benchmark jsonl:{P}/bench.jsonl --langs en,de --no-plots --no-progress"


def _argv(case: Case, world: Path, model: Path) -> list[str]:
    out = []
    for token in case.args:
        if token in EXPAND:
            expansion = (
                EXPAND_IDENTIFY if (case.args[0] == "identify" and token == "{BENCH}") else EXPAND[token]
            )
            out += [_fill(t, world, model) for t in expansion.split()]
        else:
            out.append(_fill(token, world, model))
    return out


def _fill(text: str, world: Path, model: Path) -> str:
    return text.replace("{P}", str(world)).replace("{M}", str(model)).replace("{REPO}", str(REPO))


# ---------------------------------------------------------------------------------------
# The world: inputs good and bad, decoys, a read-only folder
# ---------------------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _make_world(root: Path, model: Path) -> None:
    import torch
    from safetensors.torch import save_file

    train = [{"instruction": f"What is {i} plus {i}?", "output": f"The answer is {2 * i}."} for i in range(6)]
    _write_jsonl(root / "train.jsonl", train)
    _write_jsonl(root / "no-output.jsonl", [{"instruction": "hi"}])
    (root / "latin1.jsonl").write_bytes('{"instruction": "caf\u00e9", "output": "x"}\n'.encode("latin-1"))
    (root / "latin1.yaml").write_bytes("description: caf\u00e9\n".encode("latin-1"))
    (root / "list.yaml").write_text("- a\n- b\n")
    (root / "latin1").mkdir()
    (root / "latin1" / "config.json").write_bytes('{"model_type": "llama", "x": "\u00e9"}'.encode("latin-1"))
    questions = ["Tom has 3 apples and buys 2 more. How many?", "A box holds 4 pens. How many in 2 boxes?"]
    bench = [
        {"lang": lang, "index": i, "question": q if lang == "en" else f"(de) {q}", "answer": a}
        for lang in ("en", "de")
        for i, (q, a) in enumerate(zip(questions, (5, 8)))
    ]
    _write_jsonl(root / "bench.jsonl", bench)
    for name, answer in (("pred-nan", "NaN"), ("pred-inf", "Infinity")):
        (root / f"{name}.jsonl").write_text(
            f'{{"lang": "en", "prediction": "It is 3", "answer": {answer}}}\n'
        )
    _write_jsonl(root / "pred-list-lang.jsonl", [{"lang": ["en"], "prediction": "It is 3", "answer": 3}])
    build = {
        "sources": [{"name": "toy", "path": str(root / "train.jsonl"), "type": "alpaca"}],
        "langs": ["en"],
    }
    (root / "build.yaml").write_text(json.dumps({**build, "decontaminate": []}))
    for name, path in (("missing", root / "no-such.jsonl"), ("latin1", root / "latin1.jsonl")):
        src = {"sources": [{"name": "toy", "path": str(path), "type": "alpaca"}], "langs": ["en"]}
        (root / f"build-{name}.yaml").write_text(json.dumps({**src, "decontaminate": []}))
    # Delta files: cut short, without the SLAM manifest, with a corrupt manifest.
    delta = root / "delta"
    delta.mkdir()
    tensors = {"model.layers.0.mlp.up_proj.weight": torch.zeros(2, 2)}
    save_file(tensors, str(delta / "no-manifest.safetensors"))
    save_file(tensors, str(delta / "bad-manifest.safetensors"), metadata={"slam": "{not json"})
    (delta / "truncated.safetensors").write_bytes((delta / "no-manifest.safetensors").read_bytes()[:40])
    # Malformed results for slam compare.
    for name, file in (("bad-eval", "metrics.json"), ("bad-demo", "results.json")):
        (root / name).mkdir()
        (root / name / file).write_text('{"accuracy": ')
        command = "eval" if name == "bad-eval" else "demo"
        (root / name / "run.json").write_text(json.dumps({"command": command, "status": "complete"}))
    # A DeepSpeed that cannot be imported (as where it is not installed).
    (root / "no-deepspeed" / "deepspeed").mkdir(parents=True)
    (root / "no-deepspeed" / "deepspeed" / "__init__.py").write_text(
        "raise ImportError('no deepspeed here')\n"
    )
    (root / "out").mkdir()
    _make_decoys(root / "decoys")


def _make_decoys(decoys: Path) -> None:
    """What a user already has: nothing of it may change, whatever the command."""
    decoys.mkdir()
    (decoys / "notes.txt").write_text("my notes\n")
    (decoys / "foreign").mkdir()
    (decoys / "foreign" / "notes.txt").write_text("precious\n")
    (decoys / "foreign" / "metrics.json").write_text('{"mine": true}\n')
    record = {"status": "complete", "started": "2026-01-01T00:00:00"}
    # An earlier slam train run that a failing `slam train --overwrite` must leave alone.
    (decoys / "train-run").mkdir()
    (decoys / "train-run" / "run.json").write_text(json.dumps({"command": "train", **record}))
    (decoys / "train-run" / "config.yaml").write_text("model: base\n")
    (decoys / "train-run" / "metrics.json").write_text('{"loss_curve": {}}\n')
    (decoys / "identify-run").mkdir()
    (decoys / "identify-run" / "run.json").write_text(json.dumps({"command": "identify", **record}))
    (decoys / "identify-run" / "layers.json").write_text('{"selected": [0]}\n')
    (decoys / "eval-run").mkdir()
    (decoys / "eval-run" / "run.json").write_text(json.dumps({"command": "eval", **record}))
    (decoys / "eval-run" / "metrics.json").write_text(
        json.dumps({"benchmark": "mgsm", "accuracy": {"en": 0.5}, "average": 0.5, "model": "m"})
    )
    _write_jsonl(
        decoys / "predictions.jsonl",
        [
            {"lang": "en", "prediction": "The answer is 3.", "answer": 3},
            {"lang": "de", "prediction": "4", "answer": 5},
        ],
    )


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"<dir>", p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _read_only_dir(root: Path):
    """A folder nobody may write to; None where this machine cannot make one."""
    ro = root / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
        return ro, lambda: ro.chmod(0o755)
    # Root ignores permissions: a read-only bind mount, where the container allows mounting.
    ok = subprocess.run(["mount", "--bind", str(ro), str(ro)], capture_output=True).returncode == 0
    if (
        ok
        and subprocess.run(["mount", "-o", "remount,bind,ro", str(ro)], capture_output=True).returncode == 0
    ):
        return ro, lambda: subprocess.run(["umount", str(ro)], capture_output=True)
    if ok:
        subprocess.run(["umount", str(ro)], capture_output=True)
    return None, lambda: None


def _full_disk(root: Path):
    """A folder on a file system with no space left (a small tmpfs, filled); None where
    this machine cannot mount one (not root)."""
    full = root / "full"
    full.mkdir()
    if os.geteuid() != 0:
        return None, lambda: None
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(full)], capture_output=True
    )
    if mounted.returncode != 0:
        return None, lambda: None
    try:
        with open(full / ".filler", "wb") as f:
            while True:
                f.write(b"x" * 4096)
                f.flush()
    except OSError:  # ENOSPC: full
        pass
    return full, lambda: subprocess.run(["umount", str(full)], capture_output=True)


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE_BYTES, FSIZE_BYTES))


def run_case(case: Case, world: Path, model: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, **{k: _fill(v, world, model) for k, v in case.env.items()}}
    env.pop("SLAM_DEBUG", None)
    if "PYTHONPATH" in case.env:  # keep the package importable beside the stub
        env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(REPO), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "slam_align", *_argv(case, world, model)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=_limit_file_size if case.fsize else None,
    )


@pytest.fixture(scope="module")
def hostile(request, tmp_path_factory, tiny_llama_dir):
    """Every case run once (four at a time); the decoys' snapshots before and after."""
    world = tmp_path_factory.mktemp("hostile")
    _make_world(world, tiny_llama_dir)
    ro, release_ro = _read_only_dir(world)
    full, release_full = _full_disk(world)
    before = snapshot(world / "decoys")
    inputs_before = {p.name: p.read_bytes() for p in world.iterdir() if p.is_file()}
    # Only the cases this session collected (``-k`` picks a few while working on them).
    collected = {
        item.callspec.params["case"].id
        for item in request.session.items
        if hasattr(item, "callspec") and "case" in item.callspec.params
    } or {case.id for case in CASES}
    unavailable = {"readonly": ro is None, "full": full is None}
    runnable = [case for case in CASES if case.id in collected and not unavailable.get(case.needs)]
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = dict(
                zip(
                    (c.id for c in runnable), pool.map(lambda k: run_case(k, world, tiny_llama_dir), runnable)
                )
            )
    finally:
        release_ro()
        release_full()
    after = snapshot(world / "decoys")
    inputs_after = {p.name: p.read_bytes() for p in world.iterdir() if p.is_file()}
    return {
        "results": results,
        "before": before,
        "after": after,
        "inputs": (inputs_before, inputs_after),
        "world": world,
    }


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one ``error:`` line, checked to be the only one and the last line of stderr."""
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr[-3000:]
    return errors[0]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_fails_with_one_line_naming_it(case, hostile):
    if case.id not in hostile["results"]:
        pytest.skip(f"this machine cannot make a {case.needs} folder (needs root with mount rights)")
    proc = hostile["results"][case.id]
    assert proc.returncode != 0, f"exit 0 on hostile input\nstdout: {proc.stdout[-2000:]}"
    line = error_line(proc)
    assert case.names in line, line


def test_no_file_outside_the_run_is_touched(hostile):
    """Decoys (and every input) are byte- and mtime-identical after all the cases."""
    before, after = hostile["before"], hostile["after"]
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"changed or created among the decoys: {changed}"
    inputs_before, inputs_after = hostile["inputs"]
    assert inputs_before == inputs_after


def test_failed_runs_leave_nothing_behind(hostile):
    """Runs that failed before their work leave no output directory, no temp file, nothing
    hidden beside it (a corrected command then starts as if the first never ran)."""
    out = hostile["world"] / "out"
    left = sorted(p.name for p in out.iterdir())
    # Failing after the work began keeps a resumable or replaceable run (identify, train).
    allowed = {"i6", "t17"}
    assert set(left) <= allowed, left
    for name in left:
        assert json.loads((out / name / "run.json").read_text())["status"] == "failed"


def test_debug_shows_the_traceback(hostile, tiny_llama_dir):
    """--debug (or SLAM_DEBUG=1) keeps reports useful: the traceback is shown."""
    world = hostile["world"]
    for extra_args, env in ((["--debug"], {}), ([], {"SLAM_DEBUG": "1"})):
        proc = run_cli("plan", "--model", world / "no-model", *extra_args, env=env, check=False, timeout=120)
        assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_failed_run_never_blocks_the_fix(tmp_path, tiny_llama_dir):
    """A run that failed (disk full) is followed by the corrected command, with no
    --overwrite: identify and merge replace their failed run, data build leaves nothing,
    eval continues, train continues with --resume (what its error says)."""
    world = tmp_path / "w"
    world.mkdir()
    _make_world(world, tiny_llama_dir)
    model = tiny_llama_dir
    runs = {
        "identify": Case(
            "identify", ("identify", "--model", "{M}", "--output", "{P}/out/i", "{BENCH}", "--top-k", "2"), ""
        ),
        "build": Case("build", ("data", "build", "{P}/build.yaml", "--output", "{P}/out/b"), ""),
        "eval": Case("eval", ("eval", "--model", "{M}", "--output", "{P}/out/e", "{BENCH}"), ""),
        "train": Case("train", ("train", "--model", "{M}", "--output", "{P}/out/t", "{DATA}"), ""),
    }
    for name, case in runs.items():
        failed = run_case(Case(case.id, case.args, "", fsize=True), world, model)
        assert failed.returncode != 0, name
        line = error_line(failed)
        assert "File too large" in line, line
        fixed_case = case
        if name == "train":
            fixed_case = Case(case.id, (*case.args, "--resume"), "")
        fixed = run_case(fixed_case, world, model)
        assert fixed.returncode == 0, f"{name}: {fixed.stderr[-2000:]}"
        assert not [p.name for p in (world / "out").iterdir() if p.name.startswith(".")], name
    merge = Case(
        "merge", ("merge", "--base", "{M}", "--delta", "{P}/out/t/final", "--output", "{P}/out/m"), ""
    )
    failed = run_case(Case("m", merge.args, "", fsize=True), world, model)
    assert failed.returncode != 0 and "File too large" in error_line(failed)
    assert run_case(merge, world, model).returncode == 0
    for name in ("i", "b", "e", "t", "m"):
        assert json.loads((world / "out" / name / "run.json").read_text())["status"] == "complete", name


def test_killed_data_build_leaves_no_temp_folder(tmp_path):
    """A writer killed mid-way leaves a hidden temp folder; the next build removes it."""
    from slam_align.io import write_dir_atomically

    out = tmp_path / "mix"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".mix.{dead.pid}.abc123.tmp"
    stale.mkdir()
    (stale / "train.jsonl").write_text("half")
    live = tmp_path / f".mix.{os.getpid()}.def456.tmp"  # a live writer's: kept
    live.mkdir()
    write_dir_atomically(out, {"a.txt": lambda p: p.write_text("x")})
    assert not stale.exists() and live.exists()
    assert (out / "a.txt").read_text() == "x"
    shutil.rmtree(live)


def test_files_get_the_users_umask(tmp_path):
    """Results are readable by others on a shared machine (umask 022 -> 0644)."""
    _write_jsonl(tmp_path / "p.jsonl", [{"lang": "en", "prediction": "3", "answer": 3}])
    script = "import os, sys; os.umask(0o022); from slam_align.cli import main; sys.exit(main())"
    argv = ["score", "--predictions", str(tmp_path / "p.jsonl"), "--output", str(tmp_path / "m.json")]
    proc = subprocess.run([sys.executable, "-c", script, *argv], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o644
