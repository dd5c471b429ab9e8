"""Evaluation: generation backends -> answer extraction -> scores -> tables and plots.

- :mod:`.extract`: ``extract_answer(text, lang, stop)`` and ``answers_match`` (the one place
  answers are read from model outputs);
- :mod:`.generate`: the Transformers (batched) and vLLM backends;
- :mod:`.eval`: ``slam eval`` (``EvalOptions``, ``evaluate``);
- :mod:`.score`: ``slam score`` (re-scoring saved predictions);
- :mod:`.compare`: ``slam compare`` (several runs in one table and chart);
- :mod:`.report`: metrics, bootstrap intervals, Markdown tables and bar charts.
"""

from slam_align.evaluate.extract import answers_match, extract_answer

__all__ = ["answers_match", "extract_answer"]
