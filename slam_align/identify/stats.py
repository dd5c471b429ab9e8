"""FFN activation statistics per layer and language, accumulated on the device.

Everything SLAM's layer statistics and LAPE need derives from one accumulator per layer:
``fires[x, j]``, the number of (non-padding) tokens of language ``x`` on which FFN neuron
``j`` is active (its activation, the input of the down projection, is above a
threshold), plus ``tokens[x]``, the number of counted tokens of language ``x``. From them:

- ``P[x, j] = fires[x, j] / tokens[x]``: the activation probability (LAPE's quantity);
- ``P[x].sum()``: the number of activated neurons per token, averaged over tokens
  (SLAM's count), and ``P[x].mean()`` the same as a fraction of the layer's neurons.

The forward pre-hooks add one comparison and one matrix-vector product per layer and
batch (the 0/1 activity matrix times the token mask): no per-token Python, no host
synchronisation, nothing kept between batches but the counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from slam_align.errors import SlamError


@dataclass
class ActivationCounts:
    """Raw accumulators (moved to the CPU): what a run measured, before any statistic."""

    langs: list[str]
    fires: list[torch.Tensor]  # per layer: (num_langs, num_neurons) int64
    tokens: torch.Tensor  # (num_langs,) int64: counted tokens per language
    questions: list[int] = field(default_factory=list)  # per language

    @property
    def num_layers(self) -> int:
        return len(self.fires)

    def probabilities(self) -> list[torch.Tensor]:
        """Per layer: (num_langs, num_neurons) float64 activation probabilities."""
        if bool((self.tokens == 0).any()):
            empty = [lang for lang, n in zip(self.langs, self.tokens.tolist()) if n == 0]
            raise SlamError(
                f"no tokens were counted for language(s) {', '.join(empty)}; check the input text"
            )
        denom = self.tokens.to(torch.float64).unsqueeze(1)
        return [f.to(torch.float64) / denom for f in self.fires]


class ActivationCounter:
    """Forward pre-hooks on the FFN activation modules that count active neurons per language.

    Call :meth:`set_batch` before each forward pass with the token mask (True = count this
    token) and the batch's language; every batch holds one language.
    """

    def __init__(self, act_modules: list[list[torch.nn.Module]], langs: list[str], threshold: float = 0.0):
        self.langs = list(langs)
        self.threshold = float(threshold)
        self.act_modules = act_modules
        # One accumulator per hooked module, allocated on the first call (its width and
        # device are only known then); a layer with several modules concatenates them.
        self._fires: list[list[torch.Tensor | None]] = [[None] * len(mods) for mods in act_modules]
        self._tokens: torch.Tensor | None = None
        self._mask: torch.Tensor | None = None
        self._lang = 0
        self._handles: list = []

    def __enter__(self) -> ActivationCounter:
        for li, mods in enumerate(self.act_modules):
            for mi, mod in enumerate(mods):
                self._handles.append(mod.register_forward_pre_hook(self._make_hook(li, mi), with_kwargs=True))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def set_batch(self, mask: torch.Tensor, lang_index: int) -> None:
        """``mask``: (batch, seq) bool (True = count) on the model's device; ``lang_index`` into ``langs``."""
        self._mask = mask.reshape(-1).to(torch.float32)
        self._lang = lang_index
        if self._tokens is None:
            self._tokens = torch.zeros(len(self.langs), dtype=torch.float64, device=mask.device)
        self._tokens[lang_index] += self._mask.sum()

    def _make_hook(self, layer: int, slot: int):
        def hook(module, args, kwargs):
            x = args[0] if args else next(iter(kwargs.values()))
            width = x.shape[-1]
            flat = x.reshape(-1, width)
            mask = self._mask
            if mask is None or flat.shape[0] != mask.shape[0]:
                raise SlamError(
                    f"layer {layer}: the FFN activation module {type(module).__name__} saw "
                    f"{flat.shape[0]} tokens, expected {None if mask is None else mask.shape[0]}; "
                    "it does not process every token (a routed expert?), so it cannot be counted"
                )
            if mask.device != x.device:  # a model split over several devices (device_map)
                mask = mask.to(x.device)
            acc = self._fires[layer][slot]
            if acc is None:
                acc = torch.zeros(len(self.langs), width, dtype=torch.float64, device=x.device)
                self._fires[layer][slot] = acc
            # Active (0/1) matrix times the token mask: one matrix-vector product counts the
            # active, non-padding tokens of every neuron (2-3x faster than a masked boolean
            # sum on CPU). float32 counts are exact below 2^24 tokens per batch, and the
            # float64 accumulator stays exact far beyond any realistic run.
            acc[self._lang] += torch.mv((flat > self.threshold).to(torch.float32).t(), mask)
            return None

        return hook

    def result(self, questions: list[int] | None = None) -> ActivationCounts:
        if self._tokens is None or any(a is None for slots in self._fires for a in slots):
            raise SlamError("no activations were recorded; is the input empty?")
        fires = [torch.cat([a.cpu().round().to(torch.int64) for a in slots], dim=1) for slots in self._fires]
        tokens = self._tokens.cpu().round().to(torch.int64)
        return ActivationCounts(self.langs, fires, tokens, list(questions or []))


# ---- statistics: pure tensor functions of the activation probabilities ----------------


def mean_squared_deviation(values: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Population variance: mean over ``dim`` of (v - mean(v))^2."""
    return ((values - values.mean(dim=dim, keepdim=True)) ** 2).mean(dim=dim)


def top_fraction_sets(probs: torch.Tensor, fraction: float) -> torch.Tensor:
    """(num_langs, N) bool: per language, its ceil(fraction * N) most frequently active neurons.

    Ties are broken by the lower neuron index (a stable sort), so the result is deterministic.
    """
    if not 0 < fraction <= 1:
        raise SlamError(f"overlap top fraction must be in (0, 1], got {fraction}")
    n = probs.shape[-1]
    k = max(1, int(torch.ceil(torch.tensor(fraction * n)).item()))
    order = torch.sort(-probs, dim=-1, stable=True).indices[..., :k]
    sets = torch.zeros_like(probs, dtype=torch.bool)
    sets.scatter_(-1, order, True)
    return sets


def jaccard_with(sets: torch.Tensor, ref: int) -> torch.Tensor:
    """(num_langs,) Jaccard index |A_x ∩ A_ref| / |A_x ∪ A_ref| (1.0 when both are empty)."""
    inter = (sets & sets[ref]).sum(-1).to(torch.float64)
    union = (sets | sets[ref]).sum(-1).to(torch.float64)
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def layer_statistics(probs: list[torch.Tensor], langs: list[str], overlap_top_fraction: float = 0.1) -> dict:
    """SLAM's per-layer, per-language statistics (plain lists, ready for JSON).

    - ``activated_count[l][x]``: activated neurons per token, averaged over tokens;
    - ``activated_fraction[l][x]``: the same divided by the layer's neuron count;
    - ``count_msd[l]`` / ``fraction_msd[l]``: mean squared deviation of those over languages;
    - ``overlap_with_en[l][x]``: Jaccard index of language x's activated set with English's,
      where a language's activated set is its ``overlap_top_fraction`` most frequently
      active neurons; ``mean_overlap_non_en[l]`` averages it over the non-English languages
      (None when English is not among ``langs``).
    """
    en = langs.index("en") if "en" in langs else None
    count, fraction, count_msd, fraction_msd, overlap, mean_overlap, neurons = [], [], [], [], [], [], []
    for p in probs:
        c = p.sum(-1)
        f = p.mean(-1)
        neurons.append(p.shape[-1])
        count.append(c.tolist())
        fraction.append(f.tolist())
        count_msd.append(mean_squared_deviation(c).item())
        fraction_msd.append(mean_squared_deviation(f).item())
        if en is None:
            overlap.append(None)
            mean_overlap.append(None)
            continue
        jac = jaccard_with(top_fraction_sets(p, overlap_top_fraction), en)
        overlap.append(jac.tolist())
        others = [i for i in range(len(langs)) if i != en]
        mean_overlap.append(jac[others].mean().item() if others else 1.0)
    return {
        "num_neurons": neurons,
        "activated_count": count,
        "activated_fraction": fraction,
        "count_msd": count_msd,
        "fraction_msd": fraction_msd,
        "overlap_with_en": overlap,
        "mean_overlap_non_en": mean_overlap,
        "overlap_top_fraction": overlap_top_fraction,
    }


ACTIVATION_SCORES = ("msd", "overlap", "combined")


def activation_scores(stats: dict, score: str = "msd") -> list[float]:
    """One number per layer from :func:`layer_statistics`; higher = more language-dependent.

    - ``msd``: the mean squared deviation over languages of the activated fraction (the
      paper's statistic; fractions make layers of different widths comparable);
    - ``overlap``: 1 - the mean Jaccard overlap of the non-English languages with English;
    - ``combined``: the mean of the two, each divided by its maximum over layers.
    """
    msd = torch.tensor(stats["fraction_msd"], dtype=torch.float64)
    if score == "msd":
        return msd.tolist()
    if stats["mean_overlap_non_en"][0] is None:
        raise SlamError(f"score '{score}' compares each language with English: add 'en' to --langs")
    dis = 1.0 - torch.tensor(stats["mean_overlap_non_en"], dtype=torch.float64)
    if score == "overlap":
        return dis.tolist()
    if score == "combined":

        def norm(v: torch.Tensor) -> torch.Tensor:
            top = v.max()
            return v / top if top > 0 else torch.zeros_like(v)

        return ((norm(msd) + norm(dis)) / 2).tolist()
    raise SlamError(f"unknown activation score '{score}'; expected one of: {', '.join(ACTIVATION_SCORES)}")
