"""Prompt-masked tokenisation and the collator, on the real BPE tokenizer fixture."""

from __future__ import annotations

from slam_align.data.prompts import get_prompt
from slam_align.data.tokenize import IGNORE_INDEX, MaskedCollator, render_pair, tokenize_examples
from slam_align.data.training import Example


def test_loss_covers_the_response_only(tiny_tokenizer):
    tpl = get_prompt("alpaca")
    ex = Example(instruction="Janet has 16 eggs. How many are left?", output="16 - 3 = 13. The answer is 13.")
    (feat,), dropped = tokenize_examples([ex], tiny_tokenizer, tpl, cutoff_len=512)
    assert dropped == 0 and len(feat["input_ids"]) == len(feat["labels"])
    n_prompt = sum(1 for label in feat["labels"] if label == IGNORE_INDEX)
    prompt, target = render_pair(ex, tpl)
    assert prompt.endswith("### Response:") and target == " " + ex.output
    assert tiny_tokenizer.decode(feat["input_ids"][:n_prompt]) == prompt
    learned = feat["labels"][n_prompt:]
    assert learned == feat["input_ids"][n_prompt:] and learned[-1] == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.decode(learned[:-1]) == target


def test_input_field_and_template_choice(tiny_tokenizer):
    ex = Example(instruction="Translate to English.", input="Hallo Welt", output="Hello world")
    prompt, _ = render_pair(ex, get_prompt("llamafactory-default"))
    assert prompt == "Human: Translate to English.\n\nHallo Welt\nAssistant: "
    _, target = render_pair(ex, get_prompt("llamafactory-default"))
    assert target == "Hello world"  # the prompt already ends with a space


def test_truncation_and_examples_without_response_are_dropped(tiny_tokenizer):
    tpl = get_prompt("alpaca")
    short = Example(instruction="q", output="a long answer " * 20)
    long_prompt = Example(instruction="word " * 400, output="x")
    n_prompt = len(tiny_tokenizer(render_pair(short, tpl)[0])["input_ids"])
    cutoff = n_prompt + 5
    feats, dropped = tokenize_examples([short, long_prompt], tiny_tokenizer, tpl, cutoff_len=cutoff)
    assert dropped == 1 and len(feats) == 1 and len(feats[0]["input_ids"]) == cutoff
    assert sum(label != IGNORE_INDEX for label in feats[0]["labels"]) == 5


def test_collator_pads_right_with_masked_labels(tiny_tokenizer):
    feats, _ = tokenize_examples(
        [
            Example(instruction="a", output="b"),
            Example(instruction="a much longer question here", output="c d e"),
        ],
        tiny_tokenizer,
        get_prompt("alpaca"),
    )
    batch = MaskedCollator(pad_token_id=tiny_tokenizer.pad_token_id, pad_to_multiple_of=8)(feats)
    n0 = len(feats[0]["input_ids"])
    assert batch["input_ids"].shape[1] % 8 == 0
    assert batch["attention_mask"][0, :n0].all() and not batch["attention_mask"][0, n0:].any()
    assert (batch["labels"][0, n0:] == IGNORE_INDEX).all()
    assert (batch["input_ids"][0, n0:] == tiny_tokenizer.pad_token_id).all()
    assert batch["labels"][1].tolist()[: len(feats[1]["labels"])] == feats[1]["labels"]
