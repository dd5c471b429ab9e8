"""``slam plan``: what a method trains on a model, and the memory it needs, without weights.

The model is built on the meta device from its config (hub id, local directory or a
``config.json``), so this takes seconds even for 70B parameters and downloads no weights.
Python API: ``plan(PlanOptions(model=...)) -> dict`` (the ``--json`` object). The plan
options are :class:`~slam_align.models.freeze_plan.PlanSpec`'s, the same as ``slam train``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from slam_align.config import option
from slam_align.models.freeze_plan import PlanSpec
from slam_align.models.layers import format_layers


@dataclass(kw_only=True)
class PlanOptions(PlanSpec):
    model: str = option(help="hub id, local model directory, or path to a config.json")
    json: bool = option(False, help="print one JSON object instead of the table")
    memory: bool = option(False, help="estimate the GPU memory of training with AdamW")
    gpus: int = option(1, help="GPUs (data parallel; ZeRO shards over them)", at_least=1)
    micro_batch_size: int = option(1, help="sequences per GPU per step", at_least=1)
    seq_len: int = option(1024, help="tokens per sequence", at_least=1)
    zero: int = option(
        0,
        help="DeepSpeed ZeRO stage (0: DDP; 3 also stands for FSDP full shard: the weights, frozen "
        "ones included, are split over --gpus)",
        choices=[0, 1, 2, 3],
    )
    precision: str = option(
        "bf16",
        help="bf16/fp16: 16-bit weights, fp32 AdamW states and master copy; bf16-pure: bf16 weights and "
        "AdamW states (plain torch AdamW on a bf16 model); fp32",
        choices=["bf16", "fp16", "bf16-pure", "fp32"],
    )
    gradient_checkpointing: bool = option(True, help="recompute activations in the backward pass")
    gpu_memory_gib: float = option(80.0, help="memory of one GPU, for the 'fits' verdict", above=0)
    trust_remote_code: bool = option(
        False, help="allow a hub model's own code (transformers trust_remote_code)"
    )


def plan(options: PlanOptions) -> dict:
    """The plan of ``options`` on the model's meta-device copy, as a JSON-ready dict."""
    from slam_align.models.accounting import count_parameters, estimate_memory, layer_table, model_dims
    from slam_align.models.freeze_plan import build_plan
    from slam_align.models.layers import check_layers_spec
    from slam_align.models.loading import load_config, meta_model
    from slam_align.models.lora import lora_targets

    check_layers_spec(options.layers)
    config = load_config(options.model, trust_remote_code=options.trust_remote_code)
    model = meta_model(config, trust_remote_code=options.trust_remote_code)
    freeze = build_plan(model, options)
    counts = count_parameters(model, freeze)
    result = {
        "model": options.model,
        "model_type": freeze.model_type,
        "architecture": type(model).__name__,
        "num_layers": freeze.num_layers,
        "method": options.method,
        "layers": freeze.layers,
        "modules": freeze.modules,
        "extras": freeze.extras,
        **counts,
        "trainable_percent": round(100 * counts["trainable_fraction"], 2),
        "trainable_tensors": len(freeze.trainable_names),
        "trainable_names": freeze.trainable_names,
        "partial": {k: vars(v) for k, v in freeze.partial.items()},
        "per_layer": layer_table(model, freeze),
    }
    if freeze.method == "lora":
        result["lora"] = {**(freeze.lora or {}), **lora_targets(model, freeze)}
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
    result = plan(options)
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
