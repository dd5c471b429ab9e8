"""``slam plan``: what a method trains on a model, and the memory it needs, without weights.

The model is built on the meta device from its config (hub id, local directory or a
``config.json``), so this takes seconds even for 70B parameters and downloads no weights.
Python API: ``describe_plan(PlanOptions(model=...)) -> dict`` (the ``--json`` object).
"""

from __future__ import annotations

from dataclasses import dataclass

from slam_align.config import option
from slam_align.models.plan import METHODS, format_layers


@dataclass
class PlanOptions:
    model: str = option(help="hub id, local model directory, or path to a config.json")
    method: str = option("slam", help="what to train", choices=list(METHODS))
    layers: str = option(
        "0-5", help="layers: 0-5, 0,2,4, -1 (from the top), all, or auto:DIR/layers.json from slam identify"
    )
    modules: list[str] = option(
        [],
        help="per layer: ffn (up+down, gate frozen: SLAM), ffn-all (gate too), attention, layer "
        "(comma-separated; default: ffn, or attention for --method attention)",
    )
    extras: list[str] = option([], help="also train: embeddings, lm-head, norm (comma-separated)")
    seed: int = option(0, help="seed of --method random")
    num_random_layers: int = option(6, help="layers drawn by --method random")
    ffn_pattern: str | None = option(
        None,
        help="regex over parameter names relative to a layer naming the FFN (for architectures "
        "not in the table); named groups up, down, gate, gate_up say which is which",
    )
    attn_pattern: str | None = option(None, help="regex naming the attention parameters relative to a layer")
    lora_r: int = option(8, help="LoRA rank (--method lora)")
    json: bool = option(False, help="print one JSON object instead of the table")
    memory: bool = option(False, help="estimate the GPU memory of training with AdamW")
    gpus: int = option(1, help="GPUs (data parallel; ZeRO shards over them)")
    micro_batch_size: int = option(1, help="sequences per GPU per step")
    seq_len: int = option(1024, help="tokens per sequence")
    zero: int = option(0, help="DeepSpeed ZeRO stage", choices=[0, 1, 2, 3])
    precision: str = option(
        "bf16",
        help="bf16/fp16: 16-bit weights, fp32 AdamW states and master copy; bf16-pure: bf16 weights and "
        "AdamW states (plain torch AdamW on a bf16 model); fp32",
        choices=["bf16", "fp16", "bf16-pure", "fp32"],
    )
    gradient_checkpointing: bool = option(True, help="recompute activations in the backward pass")
    gpu_memory_gib: float = option(80.0, help="memory of one GPU, for the 'fits' verdict")
    trust_remote_code: bool = option(
        False, help="allow a hub model's own code (transformers trust_remote_code)"
    )


def describe_plan(options: PlanOptions) -> dict:
    """The plan of ``options`` on the model's meta-device copy, as a JSON-ready dict."""
    from slam_align.errors import SlamError
    from slam_align.models.accounting import count_parameters, estimate_memory, layer_table, model_dims
    from slam_align.models.loading import load_config, meta_model
    from slam_align.models.plan import build_plan, lora_targets

    for name in ("gpus", "micro_batch_size", "seq_len"):
        if getattr(options, name) < 1:
            raise SlamError(
                f"option '{name.replace('_', '-')}' must be at least 1, got {getattr(options, name)}"
            )
    config = load_config(options.model, trust_remote_code=options.trust_remote_code)
    model = meta_model(config, trust_remote_code=options.trust_remote_code)
    plan = build_plan(
        model,
        method=options.method,
        layers=options.layers,
        modules=options.modules or None,
        extras=options.extras,
        seed=options.seed,
        num_random_layers=options.num_random_layers,
        ffn_pattern=options.ffn_pattern,
        attn_pattern=options.attn_pattern,
        lora_r=options.lora_r,
    )
    counts = count_parameters(model, plan)
    result = {
        "model": options.model,
        "model_type": plan.model_type,
        "architecture": type(model).__name__,
        "num_layers": plan.num_layers,
        "method": plan.method,
        "layers": plan.layers,
        "modules": plan.modules,
        "extras": plan.extras,
        **counts,
        "trainable_percent": round(100 * counts["trainable_fraction"], 2),
        "trainable_tensors": len(plan.trainable_names),
        "trainable_names": plan.trainable_names,
        "partial": {k: vars(v) for k, v in plan.partial.items()},
        "per_layer": layer_table(model, plan),
    }
    if plan.method == "lora":
        result["lora"] = {**(plan.lora or {}), **lora_targets(model, plan)}
    if options.memory:
        result["memory"] = estimate_memory(
            counts["total_params"],
            counts["trainable_params"],
            model_dims(config, model),
            gpus=options.gpus,
            micro_batch_size=options.micro_batch_size,
            seq_len=options.seq_len,
            zero=options.zero,
            precision=options.precision,
            gradient_checkpointing=options.gradient_checkpointing,
            gpu_memory_gib=options.gpu_memory_gib,
        )
    return result


def plan_cli(options: PlanOptions) -> int:
    result = describe_plan(options)
    if options.json:
        from slam_align.io import dumps_json

        print(dumps_json(result))
    else:
        print_plan(result)
    return 0


def human(n: float) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return str(int(n))


SHORT = {
    "attention": "attn",
    "ffn up": "up",
    "ffn down": "down",
    "ffn gate": "gate",
    "ffn gate_up": "gate_up",
}


def _cell(part: dict | None) -> str:
    """Parameters of one cell; ``*`` trained, ``/2*`` up half of a fused gate_up, ``+L`` LoRA."""
    if part is None:
        return ""
    text = human(part["params"])
    if part.get("adapted"):
        return f"[bold green]{text}+L[/]"
    if part["trainable"] and part.get("partial"):
        return f"[bold green]{text}/2*[/]"
    if part["trainable"]:
        return f"[bold green]{text}*[/]"
    return text


def print_plan(result: dict) -> None:
    import sys

    from rich import box
    from rich.console import Console
    from rich.table import Table

    # piped output (no terminal width): wide enough for the MoE tables' nine columns
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    rows = [r for r in result["per_layer"] if r["layer"] is not None]
    outside = [r for r in result["per_layer"] if r["layer"] is None]
    labels: list[str] = []
    for r in rows:
        labels += [k for k in r["parts"] if k not in labels]
    lora = result["method"] == "lora"
    title = (
        f"{result['model']} ({result['model_type']}, {result['num_layers']} layers): method {result['method']}, "
        f"layers {format_layers(result['layers'])}, modules {','.join(result['modules'])}"
    )
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("layer", justify="right")
    for label in labels:
        table.add_column(SHORT.get(label, label), justify="right")
    table.add_column("trainable", justify="right")
    for r in rows:
        cells = [_cell(r["parts"].get(label)) for label in labels]
        table.add_row(str(r["layer"]), *cells, human(r["trainable"]) if r["trainable"] else "")
    for r in outside:
        cells = [_cell(r)] + [""] * (len(labels) - 1)
        table.add_row(r["name"], *cells, human(r["trainable"]) if r["trainable"] else "")
    console.print(table)
    legend = "parameters per part; * trained"
    if lora:
        legend += ", +L LoRA adapter on it (trainable = adapter parameters)"
    if result["partial"]:
        legend += ", /2* only the up half of the fused gate_up trains (gate half frozen)"
    console.print(legend)
    what = "LoRA adapter parameters" if lora else "parameters"
    console.print(
        f"trainable {what}: [bold]{result['trainable_params']:,}[/] of {result['total_params']:,} "
        f"= [bold]{100 * result['trainable_fraction']:.2f}%[/]"
    )
    mem = result.get("memory")
    if mem:
        gib = 1024**3
        console.print(
            f"memory per GPU ({mem['gpus']} GPU(s), ZeRO-{mem['zero']}, {mem['precision']}, micro-batch "
            f"{mem['micro_batch_size']} x {mem['seq_len']} tokens, gradient checkpointing "
            f"{'on' if mem['gradient_checkpointing'] else 'off'}):"
        )
        for key in ("weights", "gradients", "optimizer_states", "activations"):
            console.print(f"  {key.replace('_', ' '):<17} {mem[key + '_bytes'] / gib:8.2f} GiB")
        verdict = "fits" if mem["fits"] else "does NOT fit"
        console.print(
            f"  {'total':<17} {mem['total_bytes'] / gib:8.2f} GiB: {verdict} in {mem['gpu_memory_gib']:g} GiB"
        )
        for note in mem.get("notes", []):
            console.print(f"  note: {note}")
