"""The premise, measured: how alike a question's hidden states are in language X and in English.

SLAM rests on the claim that an English-centred model already represents a question the
same way whatever its language in the upper layers, and that languages differ mainly in
the lower ones. This module measures that per layer: each question is pooled (the mean
of its counted tokens' hidden states at the layer's output), the layer's mean over every
language and question is subtracted (without it every cosine reads ~0.9: hidden states
share a large common direction), and the cosine between the question in X and the same
question in English is averaged over the parallel questions.

The pooling runs as forward hooks on the decoder layers during identification's own
forward pass, so the statistic costs no extra pass over the data.
"""

from __future__ import annotations

import torch

STATISTIC = "centered_cosine_to_en"


class HiddenStatePooler:
    """Forward hooks on the decoder layers that keep each question's mean hidden state."""

    def __init__(self, layer_modules: list[torch.nn.Module], langs: list[str]):
        self.layer_modules = layer_modules
        self.langs = list(langs)
        # pooled[layer][lang][question index] = (hidden,) float32 vector on the CPU
        self.pooled: list[list[dict[int, torch.Tensor]]] = [[{} for _ in langs] for _ in layer_modules]
        self._mask: torch.Tensor | None = None
        self._rows: list[int] = []
        self._lang = 0
        self._handles: list = []

    def __enter__(self) -> HiddenStatePooler:
        for li, mod in enumerate(self.layer_modules):
            self._handles.append(mod.register_forward_hook(self._make_hook(li)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def set_batch(self, mask: torch.Tensor, lang_index: int, rows: list[int]) -> None:
        """``mask``: (batch, seq) bool of the counted tokens; ``rows``: each row's question index."""
        self._mask = mask.to(torch.float32)
        self._lang = lang_index
        self._rows = list(rows)

    def _make_hook(self, layer: int):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            mask = self._mask.to(hidden.device).unsqueeze(-1)  # (batch, seq, 1)
            sums = (hidden.float() * mask).sum(dim=1)
            pooled = (sums / mask.sum(dim=1).clamp(min=1.0)).cpu()
            for row, index in enumerate(self._rows):
                self.pooled[layer][self._lang][index] = pooled[row]

        return hook

    def result(self) -> dict:
        """``{"statistic", "per_lang": {lang: [per layer]}, "mean_non_en": [per layer]}``."""
        return cross_lingual_similarity(self.pooled, self.langs)


def cross_lingual_similarity(pooled: list[list[dict[int, torch.Tensor]]], langs: list[str]) -> dict:
    """Per layer and non-English language: mean centred cosine to the same question in English."""
    en = langs.index("en")
    per_lang: dict[str, list[float]] = {lang: [] for lang in langs if lang != "en"}
    for layer in pooled:
        common = sorted(set.intersection(*(set(d) for d in layer)))
        stacked = torch.stack([torch.stack([d[i] for i in common]) for d in layer])  # (langs, q, hidden)
        centred = stacked - stacked.mean(dim=(0, 1), keepdim=True)
        unit = torch.nn.functional.normalize(centred, dim=-1)
        for x, lang in enumerate(langs):
            if x != en:
                per_lang[lang].append(float((unit[x] * unit[en]).sum(dim=-1).mean()))
    layers = len(pooled)
    mean = [sum(v[i] for v in per_lang.values()) / len(per_lang) for i in range(layers)]
    return {"statistic": STATISTIC, "per_lang": per_lang, "mean_non_en": mean}


def plot_similarity(similarity: dict, path, title: str = "Cross-lingual similarity to English") -> None:
    """One line per language over the layers, the mean in black."""
    from matplotlib.ticker import MaxNLocator

    from slam_align.plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for lang, values in similarity["per_lang"].items():
        ax.plot(range(len(values)), values, marker="o", ms=3, lw=1, alpha=0.7, label=lang)
    mean = similarity["mean_non_en"]
    ax.plot(range(len(mean)), mean, color="black", lw=2.5, label="mean")
    ax.set(xlabel="layer (output of)", ylabel="centred cosine to English", title=title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, path)
