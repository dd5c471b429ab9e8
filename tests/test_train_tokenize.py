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
    assert prompt == "Human: Translate to English.\nHallo Welt\nAssistant: "  # LLaMA-Factory: one newline
    assert render_pair(ex, get_prompt("alpaca"))[0].endswith(
        "Translate to English.\n\nHallo Welt\n\n### Response:"
    )
    _, target = render_pair(ex, get_prompt("llamafactory-default"))
    assert target == "Hello world"  # the prompt already ends with a space


def test_truncation_keeps_the_answer_and_drops_only_empty_examples(tiny_tokenizer):
    tpl = get_prompt("alpaca")
    short = Example(instruction="q", output="a long answer " * 20)
    long_prompt = Example(instruction="word " * 400, output="x")
    n_prompt = len(tiny_tokenizer(render_pair(short, tpl)[0])["input_ids"])
    cutoff = 2 * n_prompt + 6  # the prompt is short (under half): it stays whole, the answer is cut
    feats, dropped = tokenize_examples([short, long_prompt], tiny_tokenizer, tpl, cutoff_len=cutoff)
    assert dropped == 0 and len(feats) == 2 and [len(f["input_ids"]) for f in feats] == [cutoff, cutoff]
    assert sum(label != IGNORE_INDEX for label in feats[0]["labels"]) == cutoff - n_prompt
    # the long prompt is cut instead of its answer: " x" and EOS are learned
    learned = [label for label in feats[1]["labels"] if label != IGNORE_INDEX]
    assert learned[-1] == tiny_tokenizer.eos_token_id and tiny_tokenizer.decode(learned[:-1]) == " x"
    # only an example with nothing to learn (no output and no EOS) is dropped
    no_eos = tiny_tokenizer.__class__.from_pretrained(tiny_tokenizer.name_or_path)
    no_eos.eos_token = None
    _, dropped = tokenize_examples([Example(instruction="q", output="")], no_eos, tpl, cutoff_len=64)
    assert dropped == 1


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


class _RecordingTokenizer:
    """The real tokenizer, recording the longest text it was given (memory is bounded by that)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.longest = tokenizer, 0

    def __call__(self, texts, **kw):
        for text in [texts] if isinstance(texts, str) else texts:
            self.longest = max(self.longest, len(text))
        return self.tokenizer(texts, **kw)

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def test_huge_example_is_cut_before_tokenising(tiny_tokenizer):
    """A 4 MB example: the tokenizer never sees it whole, and the kept tokens are those that
    tokenising the whole text and cutting would keep (a short answer stays whole)."""
    from slam_align.data.tokenize import field_char_limit

    tpl = get_prompt("alpaca")
    huge = Example(
        instruction="How many eggs? " + "lorem ipsum dolor sit amet " * 150_000, output="The answer is 9."
    )
    assert len(huge.instruction) > 4_000_000
    recorder = _RecordingTokenizer(tiny_tokenizer)
    (cut,), _ = tokenize_examples([huge], recorder, tpl, cutoff_len=256)
    assert recorder.longest < field_char_limit(256) + 1000 < len(huge.instruction)
    # What tokenising the whole 4 MB text and then cutting gives (as before the limit).
    from slam_align.data.tokenize import truncate

    prompt, target = render_pair(huge, tpl)
    p = tiny_tokenizer(prompt, add_special_tokens=tpl.add_special_tokens)["input_ids"]
    t = tiny_tokenizer(target, add_special_tokens=False)["input_ids"] + [tiny_tokenizer.eos_token_id]
    marker = len(tiny_tokenizer(tpl.suffix, add_special_tokens=False)["input_ids"])
    p, t = truncate(p, t, 256, tpl.truncation, marker)
    assert len(cut["input_ids"]) == 256 and cut["input_ids"] == p + t
