"""PNG plots of a ``layers.json`` result (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from slam_align.plotting import pyplot, save_figure


def plot_curves(result: dict, path: Path) -> None:
    """Per layer, one line per language: activated neurons, overlap with English; then the scores."""
    plt = pyplot()
    stats, langs = result["activation"], result["langs"]
    layers = list(range(result["num_layers"]))
    has_overlap = stats["overlap_with_en"][0] is not None
    fig, axes = plt.subplots(1, 3 if has_overlap else 2, figsize=(15 if has_overlap else 10, 4))
    ax = axes[0]
    for x, lang in enumerate(langs):
        ax.plot(layers, [row[x] for row in stats["activated_count"]], marker="o", ms=3, label=lang)
    ax.set(xlabel="layer", ylabel="activated neurons per token", title="Activated FFN neurons")
    ax.legend(fontsize=7, ncol=2)
    if has_overlap:
        ax = axes[1]
        for x, lang in enumerate(langs):
            if lang != "en":
                ax.plot(layers, [row[x] for row in stats["overlap_with_en"]], marker="o", ms=3, label=lang)
        ax.set(
            xlabel="layer",
            ylabel="Jaccard overlap",
            title=f"Overlap with English (top {100 * stats['overlap_top_fraction']:.0f}% neurons)",
        )
        ax.legend(fontsize=7, ncol=2)
    ax = axes[-1]
    colors = ["tab:red" if i in result["selected"] else "tab:gray" for i in layers]
    ax.bar(layers, result["scores"], color=colors)
    ax.set(
        xlabel="layer",
        ylabel=result["score"],
        title=f"Layer score ({result['method']}); red = selected",
    )
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    save_figure(fig, path)


def plot_heatmap(result: dict, path: Path) -> None:
    """Layer x language: activated share relative to the layer's mean, and LAPE's specific neurons."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    langs = result["langs"]
    frac = np.array(result["activation"]["activated_fraction"])  # layers x langs
    dev = 100 * (frac - frac.mean(axis=1, keepdims=True))
    specific = np.array(result["lape"]["specific_per_lang"], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(12, max(3, 0.35 * len(frac) + 1.5)))
    panels = [
        (dev, "activated share - layer mean (points)", "coolwarm"),
        (specific, "LAPE language-specific neurons", "viridis"),
    ]
    for ax, (data, title, cmap) in zip(axes, panels):
        if cmap == "coolwarm":
            lim = max(float(np.abs(data).max()), 1e-9)
            im = ax.imshow(data, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, origin="lower")
        else:
            im = ax.imshow(data, aspect="auto", cmap=cmap, origin="lower")
        ax.set_xticks(range(len(langs)), langs, rotation=45, fontsize=8)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(ylabel="layer", title=title)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_figure(fig, path)


def write_plots(result: dict, out_dir: Path) -> list[str]:
    """Write both plots into ``out_dir``; return their file names."""
    names = ["layers_curves.png", "layers_heatmap.png"]
    plot_curves(result, Path(out_dir) / names[0])
    plot_heatmap(result, Path(out_dir) / names[1])
    return names
