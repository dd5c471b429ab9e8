"""Data: benchmarks (MGSM, MSVAMP, GSM8K, X-CSQA: definitions in ``slam_align/benchmarks/``),
training-data readers, mixtures, prompts, tokenisation.

Imports here stay light (no ``datasets`` / ``torch``): hub loading imports ``datasets`` only
when it runs.
"""

from slam_align.data.benchmarks import BENCHMARK_LANGS, Problem, load_benchmark, parse_gold
from slam_align.data.mixing import read_training_files
from slam_align.data.training import (
    Example,
    read_alpaca,
    read_gsm8kinstruct,
    read_mathoctopus,
    read_metamath,
    read_qalign_question,
)

__all__ = [
    "BENCHMARK_LANGS",
    "Example",
    "Problem",
    "load_benchmark",
    "parse_gold",
    "read_alpaca",
    "read_gsm8kinstruct",
    "read_mathoctopus",
    "read_metamath",
    "read_qalign_question",
    "read_training_files",
]
