"""``--packing``: packed rows give the same loss and gradients as the same examples padded.

Tiny randomly initialised models of the real classes (SDPA attention, float32), features
with prompt masking as tokenisation makes them; fast (no training run, no subprocess).
"""

from __future__ import annotations

import pytest
import torch

from slam_align.data.packing import (
    PACKING_VERIFIED,
    REAL_TOKENS,
    PackedCollator,
    PackedDataset,
    check_packable,
    pack_features,
)
from slam_align.data.tokenize import IGNORE_INDEX, MaskedCollator
from slam_align.errors import SlamError

VOCAB = 96


def _features(seed: int = 1) -> list[dict]:
    """Seven examples of 4..40 tokens, each with a masked prompt of 2..12 tokens."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for n, p in [(17, 5), (40, 12), (4, 2), (23, 7), (9, 3), (31, 10), (12, 4)]:
        ids = torch.randint(3, VOCAB, (n,), generator=g).tolist()
        out.append({"input_ids": ids, "labels": [IGNORE_INDEX] * p + ids[p:]})
    return out


def _model(model_type: str):
    from transformers import AutoModelForCausalLM

    from slam_align.models.tiny import tiny_config

    torch.manual_seed(0)
    config = tiny_config(model_type, vocab_size=VOCAB, num_layers=2, hidden=32)
    return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa").float()


def _loss_and_grads(model, batch: dict) -> tuple[torch.Tensor, dict]:
    model.zero_grad()
    inputs = {k: v for k, v in batch.items() if k != REAL_TOKENS}
    loss = model(**inputs).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _max_grad_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.mark.parametrize("model_type", PACKING_VERIFIED)
def test_packed_loss_and_gradients_equal_padded(model_type):
    model = _model(model_type)
    features = _features()
    rows = pack_features(features, cutoff=48)
    assert len(rows) < len(features)  # several examples share a row
    padded = MaskedCollator(pad_token_id=0)(features)
    packed = PackedCollator(pad_token_id=0)(rows)
    assert packed["input_ids"].numel() < padded["input_ids"].numel()
    loss_padded, grads_padded = _loss_and_grads(model, padded)
    loss_packed, grads_packed = _loss_and_grads(model, packed)
    assert loss_packed.item() == pytest.approx(loss_padded.item(), abs=1e-5)
    assert _max_grad_diff(grads_packed, grads_padded) < 1e-5


def test_without_restarting_positions_examples_would_see_each_other():
    """The controls: the same packed rows with positions running on, or with a KV cache
    (which turns Transformers' packed-sequence detection off), give another loss."""
    model = _model("llama")
    features = _features()
    padded = MaskedCollator(pad_token_id=0)(features)
    packed = PackedCollator(pad_token_id=0)(pack_features(features, cutoff=48))
    loss_padded, grads_padded = _loss_and_grads(model, padded)
    positions = torch.arange(packed["input_ids"].shape[1]).expand_as(packed["input_ids"])
    for control in (dict(packed, position_ids=positions), dict(packed, use_cache=True)):
        loss, grads = _loss_and_grads(model, control)
        # 10x the equality test's tolerance on the loss, 1000x on the gradients
        assert abs(loss.item() - loss_padded.item()) > 1e-4
        assert _max_grad_diff(grads, grads_padded) > 1e-2


def test_trainer_step_is_the_same_packed_and_padded(tmp_path, tiny_tokenizer):
    """Through the shared Trainer set-up: its loss normalisation (``num_items_in_batch``: the
    response tokens of the whole batch) and token counts agree on packed and padded batches."""
    from slam_align.train.train import TrainOptions
    from slam_align.train.trainer import build_trainer

    features = _features()
    steps = {}
    for packing in (False, True):
        model = _model("qwen2")
        options = TrainOptions(model="unused", output=str(tmp_path), packing=packing, progress=False)
        dataset = PackedDataset(features, 48) if packing else features
        trainer = build_trainer(model, tiny_tokenizer, dataset, options, tmp_path / str(packing))
        batch = trainer.data_collator(dataset.rows if packing else features)
        n_items = trainer._get_num_items_in_batch([batch], torch.device("cpu"))
        model.zero_grad()
        trainer.create_optimizer()
        loss = trainer.training_step(model, batch, n_items)
        trainer._track_num_input_tokens(batch)
        grads = {n: p.grad.clone() for n, p in model.named_parameters()}
        steps[packing] = (loss.item(), grads, trainer.state.num_input_tokens_seen, trainer.positions_seen)
    real = sum(len(f["input_ids"]) for f in features)
    assert steps[True][0] == pytest.approx(steps[False][0], abs=1e-5)
    assert _max_grad_diff(steps[True][1], steps[False][1]) < 1e-5
    assert steps[True][2] == steps[False][2] == real
    assert real <= steps[True][3] < steps[False][3]


def test_rows_hold_every_example_once_within_the_cutoff():
    features = _features()
    rows = pack_features(features, cutoff=48)
    assert all(sum(len(f["input_ids"]) for f in row) <= 48 for row in rows)
    flat = sorted(id(f) for row in rows for f in row)
    assert flat == sorted(id(f) for f in features)
    assert [[len(f["input_ids"]) for f in r] for r in rows] == [
        [len(f["input_ids"]) for f in r] for r in pack_features(features, cutoff=48)
    ]


def test_collator_restarts_positions_and_masks_each_first_label():
    a = {"input_ids": [5, 6, 7], "labels": [IGNORE_INDEX, 6, 7]}
    b = {"input_ids": [8, 9], "labels": [8, 9]}
    c = {"input_ids": [4], "labels": [4]}
    batch = PackedCollator(pad_token_id=0)([[a, b], [c]])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [4, 0, 0, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 0, 1, 2, 3]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9], [-100] + [-100] * 4]
    assert batch[REAL_TOKENS].item() == 6 and batch["use_cache"] is False
    assert "attention_mask" not in batch  # Transformers reads packing from position ids only without one


def test_unverified_architectures_are_refused_in_one_line():
    from slam_align.models.tiny import tiny_config

    check_packable(tiny_config("llama"))
    with pytest.raises(SlamError, match="model type 'gpt2' is not known to keep packed examples apart"):
        check_packable(tiny_config("gpt2"))
