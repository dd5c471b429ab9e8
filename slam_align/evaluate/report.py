"""Metrics from scored predictions, bootstrap intervals, the Markdown table and the bar chart.

One function, :func:`compute_metrics`, turns scored rows into ``metrics.json`` for both
``slam eval`` and ``slam score``, so re-scoring a run reproduces its numbers exactly.

Shape (per benchmark, and the first benchmark's copied to the top level)::

    accuracy            {lang: fraction 0..1}
    average             mean of the per-language accuracies (each language weighs the same)
    average_non_en      the same over the languages other than "en" (null if none)
    en_retention        average_non_en / accuracy["en"]: how much of its English accuracy the
                        model keeps in the other languages (null without English or at 0)
    ci95                {"accuracy": {lang: [lo, hi]}, "average": [lo, hi], "average_non_en": [lo, hi]}
    no_answer_rate      fraction of outputs with no extractable number (all languages)
    no_answer_rate_per_lang {lang: fraction}
    n, correct          {lang: count}

and the same accuracy under the published protocol (QAlign / MathOctopus: the last number
of the output, :func:`slam_align.evaluate.extract.last_number`; for a choice benchmark SLAM's
"The answer is (X).", :func:`slam_align.evaluate.choice.answer_is_choice`), when the rows carry
its verdict (``correct_last_number``)::

    accuracy_last_number        {lang: fraction}
    average_last_number         mean over languages
    average_non_en_last_number  mean over the languages other than "en"
    correct_last_number         {lang: count}
    ci95["accuracy_last_number"], ci95["average_last_number"]   (drawn with the same resamples)

95% intervals are percentile bootstrap intervals (``bootstrap`` resamples, seeded). When
every language holds the same problem indices (MGSM, MSVAMP: parallel translations) the
resampling draws problems jointly across languages (a paired bootstrap), so the interval
of an average reflects that its languages share problems; otherwise each language is
resampled on its own. A choice benchmark's block also says ``"answer_type": "choice"`` (a
block without the key is a number benchmark's, as in every metrics file written before).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from slam_align.data.languages import PAPER_LANGS
from slam_align.evaluate.answers import ANSWER_TYPES
from slam_align.evaluate.extract import base_language

_LANG_ORDER = {code: i for i, code in enumerate((*PAPER_LANGS[:-1], "te"))}


def lang_sort_key(lang: str) -> tuple:
    """The paper's table order (low-resource first), then the other languages alphabetically
    (X-CSQA's it nl pl ...), English last; synthetic codes beside theirs."""
    base = base_language(lang)
    group = 2 if base == "en" else 0 if base in _LANG_ORDER else 1
    return (group, _LANG_ORDER.get(base, 0), base, lang)


def order_langs(langs) -> list[str]:
    return sorted(set(langs), key=lang_sort_key)


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def bootstrap_samples(correct: dict[str, dict[int, bool]], n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """Per language, ``n_boot`` resampled accuracies (paired across languages when possible)."""
    rng = np.random.default_rng(seed)
    langs = list(correct)
    index_sets = [tuple(sorted(correct[lang])) for lang in langs]
    if len(set(index_sets)) == 1 and index_sets and index_sets[0]:
        order = index_sets[0]
        draws = rng.integers(0, len(order), size=(n_boot, len(order)))
        out = {}
        for lang in langs:
            c = np.array([correct[lang][i] for i in order], dtype=float)
            out[lang] = c[draws].mean(axis=1)
        return out
    out = {}
    for lang in langs:
        c = np.array([correct[lang][i] for i in sorted(correct[lang])], dtype=float)
        draws = rng.integers(0, len(c), size=(n_boot, len(c)))
        out[lang] = c[draws].mean(axis=1)
    return out


def _interval(samples: np.ndarray) -> list[float]:
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return [float(lo), float(hi)]


def _verdicts(rows: Sequence[dict], langs: list[str], field: str) -> dict[str, dict[int, bool]]:
    """{lang: {problem index: verdict}} of ``field`` (rows without an int ``index``: position)."""
    out: dict[str, dict[int, bool]] = {lang: {} for lang in langs}
    for pos, r in enumerate(rows):
        key = r.get("index")
        key = key if isinstance(key, int) and not isinstance(key, bool) else pos
        out[r["lang"]][key] = bool(r[field])
    return out


def benchmark_metrics(rows: Sequence[dict], n_boot: int = 1000, seed: int = 0) -> dict:
    """Metrics of one benchmark's scored rows (``lang``, ``correct``, ``extracted``, ``index``,
    and ``correct_last_number`` when every row has it)."""
    langs = order_langs(r["lang"] for r in rows)
    correct = _verdicts(rows, langs, "correct")
    no_answer: dict[str, int] = dict.fromkeys(langs, 0)
    for r in rows:
        no_answer[r["lang"]] += r.get("extracted") is None
    n = {lang: len(correct[lang]) for lang in langs}
    hits = {lang: int(sum(correct[lang].values())) for lang in langs}
    accuracy = {lang: hits[lang] / n[lang] for lang in langs}
    non_en = [lang for lang in langs if lang != "en"]
    average = _mean(accuracy.values())
    average_non_en = _mean(accuracy[lang] for lang in non_en)
    en = accuracy.get("en")
    retention = average_non_en / en if (en and average_non_en is not None) else None

    ci: dict = {"accuracy": {}, "average": None, "average_non_en": None}
    if n_boot > 0 and langs:
        samples = bootstrap_samples(correct, n_boot, seed)
        ci["accuracy"] = {lang: _interval(samples[lang]) for lang in langs}
        ci["average"] = _interval(np.mean([samples[lang] for lang in langs], axis=0))
        if non_en:
            ci["average_non_en"] = _interval(np.mean([samples[lang] for lang in non_en], axis=0))
    total = sum(n.values())
    out = {
        "accuracy": accuracy,
        "average": average,
        "average_non_en": average_non_en,
        "en_retention": retention,
        "ci95": ci,
        "no_answer_rate": (sum(no_answer.values()) / total) if total else None,
        "no_answer_rate_per_lang": {lang: no_answer[lang] / n[lang] for lang in langs},
        "n": n,
        "correct": hits,
    }
    if rows and all("correct_last_number" in r for r in rows):
        out.update(_last_number_metrics(rows, langs, non_en, n, n_boot, seed, ci))
    types = {r.get("answer_type", "number") for r in rows}
    if types != {"number"}:
        out["answer_type"] = "/".join(sorted(types))
    return out


def _last_number_metrics(rows, langs, non_en, n, n_boot: int, seed: int, ci: dict) -> dict:
    """The published protocol's accuracy; its intervals use the same resamples (same seed)."""
    verdicts = _verdicts(rows, langs, "correct_last_number")
    hits = {lang: int(sum(verdicts[lang].values())) for lang in langs}
    accuracy = {lang: hits[lang] / n[lang] for lang in langs}
    if n_boot > 0 and langs:
        samples = bootstrap_samples(verdicts, n_boot, seed)
        ci["accuracy_last_number"] = {lang: _interval(samples[lang]) for lang in langs}
        ci["average_last_number"] = _interval(np.mean([samples[lang] for lang in langs], axis=0))
    return {
        "accuracy_last_number": accuracy,
        "average_last_number": _mean(accuracy.values()),
        "average_non_en_last_number": _mean(accuracy[lang] for lang in non_en),
        "correct_last_number": hits,
    }


TOP_LEVEL_KEYS = (
    "accuracy",
    "average",
    "average_non_en",
    "en_retention",
    "ci95",
    "no_answer_rate",
    "no_answer_rate_per_lang",
    "n",
    "correct",
    "accuracy_last_number",
    "average_last_number",
    "average_non_en_last_number",
    "correct_last_number",
    "answer_type",
)


def compute_metrics(rows: Sequence[dict], n_boot: int = 1000, seed: int = 0, benchmark_order=None) -> dict:
    """``{"benchmarks": {name: metrics}, "benchmark": first, **first's metrics}`` from scored rows.

    Rows without a ``benchmark`` field count as one benchmark named ``predictions``.
    """
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r.get("benchmark") or "predictions"), []).append(r)
    names = [b for b in (benchmark_order or []) if b in groups] + [
        b for b in groups if b not in (benchmark_order or [])
    ]
    per = {name: benchmark_metrics(groups[name], n_boot=n_boot, seed=seed) for name in names}
    out: dict = {"benchmark": names[0] if names else None}
    if names:
        out.update({k: per[names[0]][k] for k in TOP_LEVEL_KEYS if k in per[names[0]]})
    out["benchmarks"] = per
    out["bootstrap"] = {"resamples": n_boot, "seed": seed, "interval": "95% percentile"}
    return out


# ---------------------------------------------------------------------------------------
# Markdown and plots
# ---------------------------------------------------------------------------------------


def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}"


def markdown_table(metrics: dict) -> str:
    """Benchmarks as rows, languages as columns (accuracy in %), then the averages.

    Each benchmark has a second row, "NAME (last number)" ("NAME (published)" for a choice
    benchmark): the published protocol's accuracy on the same generations. "en retention" is
    ``average_non_en / accuracy["en"]`` in %; "no answer" the share of outputs with no
    extractable answer."""
    per = metrics["benchmarks"]
    langs = order_langs(lang for m in per.values() for lang in m["accuracy"])
    head = ["benchmark", *langs, "avg", "non-en avg", "en retention", "no answer"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    types = []
    for name, m in per.items():
        kind = ANSWER_TYPES.get(m.get("answer_type", "number"), ANSWER_TYPES["number"])
        types.append(kind.name)
        cells = [pct(m["accuracy"].get(lang)) for lang in langs]
        cells += [
            pct(m["average"]),
            pct(m["average_non_en"]),
            pct(m["en_retention"]),
            pct(m["no_answer_rate"]),
        ]
        lines.append("| " + " | ".join([name, *cells]) + " |")
        if "accuracy_last_number" in m:
            acc = m["accuracy_last_number"]
            non_en, en = m["average_non_en_last_number"], acc.get("en")
            cells = [pct(acc.get(lang)) for lang in langs]
            cells += [
                pct(m["average_last_number"]),
                pct(non_en),
                pct(non_en / en if (en and non_en is not None) else None),
                "–",
            ]
            lines.append("| " + " | ".join([f"{name} ({kind.published_name})", *cells]) + " |")
    lines.append("")
    if "number" in types:
        lines.append(
            "accuracy: slam-align's answer extraction; (last number): the published protocol of QAlign and "
            "MathOctopus on the same generations (docs/evaluation.md)."
        )
    if "choice" in types:
        lines.append(
            'choice benchmarks: slam-align\'s choice extraction; (published): the first "The answer is (X)." '
            "of the output, as SLAM's X-CSQA evaluator scores (docs/evaluation.md)."
        )
    lines.append("")
    lines.append("95% bootstrap intervals (accuracy %):")
    lines.append("")
    lines.append("| benchmark | " + " | ".join([*langs, "avg", "non-en avg"]) + " |")
    lines.append("|" + "---|" * (len(langs) + 3))
    for name, m in per.items():
        ci = m["ci95"]
        cells = [_ci_cell(ci["accuracy"].get(lang)) for lang in langs]
        cells += [_ci_cell(ci.get("average")), _ci_cell(ci.get("average_non_en"))]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines) + "\n"


def _ci_cell(interval) -> str:
    return "–" if not interval else f"{100 * interval[0]:.1f}–{100 * interval[1]:.1f}"


def bar_chart(
    series: dict[str, dict[str, float]],
    path: str | Path,
    title: str,
    errors: dict[str, dict[str, list[float]]] | None = None,
    ylabel: str = "accuracy (%)",
) -> Path:
    """Grouped bars: x = languages (+ averages), one bar per series (benchmark or run)."""
    from slam_align.plotting import pyplot, save_figure

    plt = pyplot()
    cols = list(dict.fromkeys(c for s in series.values() for c in s))
    k = max(len(series), 1)
    width = 0.8 / k
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(cols) * max(1, k / 2) + 2), 4))
    x = np.arange(len(cols))
    for j, (name, values) in enumerate(series.items()):
        ys = [100 * values[c] if values.get(c) is not None else np.nan for c in cols]
        yerr = None
        if errors and errors.get(name):
            lo = [ys[i] - 100 * errors[name][c][0] if errors[name].get(c) else 0 for i, c in enumerate(cols)]
            hi = [100 * errors[name][c][1] - ys[i] if errors[name].get(c) else 0 for i, c in enumerate(cols)]
            yerr = np.nan_to_num(np.array([lo, hi]), nan=0.0).clip(min=0)
        ax.bar(
            x + (j - (k - 1) / 2) * width,
            ys,
            width,
            label=name,
            yerr=yerr,
            capsize=2 if yerr is not None else 0,
        )
    ax.set_xticks(x)
    ax.set_xticklabels(cols, rotation=0 if len(cols) <= 14 else 45)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


def metrics_chart(metrics: dict, path: str | Path, title: str) -> Path:
    """Per-language accuracy with 95% intervals, one bar group per language, one colour per benchmark."""
    series, errors = {}, {}
    for name, m in metrics["benchmarks"].items():
        series[name] = {**m["accuracy"], "avg": m["average"], "non-en": m["average_non_en"]}
        errors[name] = {
            **m["ci95"]["accuracy"],
            "avg": m["ci95"].get("average"),
            "non-en": m["ci95"].get("average_non_en"),
        }
    return bar_chart(series, path, title, errors)
