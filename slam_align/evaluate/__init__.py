"""Evaluation: generation backends -> answer extraction -> scores -> tables and plots.

- :mod:`.answers`: the answer types (``number``, ``choice``): how gold answers and outputs
  are read and compared, and the published protocol of each;
- :mod:`.extract`: ``extract_answer(text, lang, stop)`` and ``answers_match`` (numbers);
- :mod:`.choice`: ``extract_choice(text, choices, lang, stop)`` (multiple choice: X-CSQA);
- :mod:`.generate`: the Transformers (batched) and vLLM backends;
- :mod:`.eval`: ``slam eval`` (``EvalOptions``, ``evaluate``);
- :mod:`.score`: ``slam score`` (re-scoring saved predictions);
- :mod:`.compare`: ``slam compare`` (several runs in one table and chart);
- :mod:`.report`: metrics, bootstrap intervals, Markdown tables and bar charts.
"""

from slam_align.evaluate.choice import extract_choice
from slam_align.evaluate.extract import answers_match, extract_answer

__all__ = ["answers_match", "extract_answer", "extract_choice"]
