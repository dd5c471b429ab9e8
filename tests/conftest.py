"""Shared fixtures: the real benchmark files, a real BPE tokenizer, tiny random models.

``../shared/data`` (beside the repository root) holds the real MGSM / MSVAMP / GSM8K
files; tests that need them skip with a clear reason where the folder is absent (as on
a user's machine). Set ``SLAM_SHARED_DATA`` to point elsewhere.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SLAM_SHARED_DATA", REPO.parent / "shared" / "data"))

# Two cores: keep each test process from oversubscribing them.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "mgsm").is_dir():
        pytest.skip(
            f"real benchmark files not found at {SHARED_DATA} (set SLAM_SHARED_DATA to run these tests)"
        )
    return SHARED_DATA


def _tokenizer_corpus() -> list[str]:
    """Real multilingual text when available (MGSM in 11 languages), else a fixed fallback."""
    texts: list[str] = []
    mgsm = SHARED_DATA / "mgsm"
    if mgsm.is_dir():
        for f in sorted(mgsm.glob("mgsm_*.tsv")):
            texts += [line.rsplit("\t", 1)[0] for line in f.read_text(encoding="utf-8").splitlines()[:60]]
    texts += [
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
        "### Instruction:\n### Response: Let's think step by step. The answer is 42.",
        "Janet has 16 eggs. She eats 3 and bakes 4. 16 - 3 - 4 = 9. The answer is 9.",
        "Translate the following sentences from German to English.",
    ] * 20
    return texts


@pytest.fixture(scope="session")
def tiny_tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE tokenizer (vocab 512) trained on real MGSM text, saved to disk."""
    from slam_align.models.tiny import train_bpe_tokenizer

    out = tmp_path_factory.mktemp("tokenizer")
    train_bpe_tokenizer(_tokenizer_corpus(), vocab_size=512, output_dir=out)
    return out


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_tokenizer_dir))


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory, tiny_tokenizer):
    """``make(model_type='llama', **config_overrides) -> Path`` of a saved tiny model + tokenizer (cached)."""
    from slam_align.models.tiny import build_tiny_model

    cache: dict[tuple, Path] = {}

    def make(model_type: str = "llama", seed: int = 0, **overrides) -> Path:
        key = (model_type, seed, tuple(sorted(overrides.items())))
        if key not in cache:
            out = tmp_path_factory.mktemp(f"tiny-{model_type}")
            build_tiny_model(model_type, tiny_tokenizer, seed=seed, output_dir=out, **overrides)
            cache[key] = out
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_model_factory) -> Path:
    return tiny_model_factory("llama")


@pytest.fixture(scope="session")
def digits_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    """The tiny Llama with an LM head that can only emit digits, '.', space or EOS.

    A random model almost never writes a number; this one always does, so evaluation scores
    are not all zero and checks on them can fail.
    """
    from model_files import restricted_head_copy

    tokens = [str(d) for d in range(10)] + [".", "Ġ"]
    return restricted_head_copy(tiny_llama_dir, tmp_path_factory.mktemp("digits"), tokens, seed=0)


def run_cli(
    *args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 600, check: bool = True
) -> subprocess.CompletedProcess:
    """Run ``python -m slam_align ARGS`` as a real subprocess; return the completed process."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "slam_align", *map(str, args)],
        cwd=cwd or REPO,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"slam {' '.join(map(str, args))} exited {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
            f"stderr:\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture
def cli():
    return run_cli


# Fixtures that start ``slam`` subprocesses or train: every test using one is ``slow``.
SLOW_FIXTURES = {"cli", "e2e_run", "slam_run", "quick_run"}


def pytest_collection_modifyitems(config, items):
    """Markers from the fixtures a test uses: ``shared_data`` for tests that read ../shared/data
    (``-m "not shared_data"`` runs the rest, as on a user's machine without the folder) and
    ``slow`` for tests that start subprocesses or train (``-m "not slow"``: the inner loop)."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "shared_data" in names:
            item.add_marker(pytest.mark.shared_data)
        if names & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)
