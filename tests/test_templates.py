"""Prompt templates reproduce their source token for token: LLaMA-Factory 0.5.3's ``default``
for a tokenizer that adds BOS and one that does not, and the keep-answer truncation."""

from __future__ import annotations

import pytest
from lf053_reference import EXAMPLES, build_tokenizer

from slam_align.data.prompts import PROMPTS, TRUNCATIONS, get_prompt
from slam_align.data.tokenize import IGNORE_INDEX, tokenize_examples, truncate, truncated_lengths
from slam_align.data.training import Example

# (tokenizer, example) -> (prompt ids, answer ids) as LLaMA-Factory 0.5.3's own pipeline made them
# (tests/lf053_reference.py says how); the answer ids are the labels that are not -100.
LF053 = {
    ('bos', 'short'): ([3, 24, 50, 43, 32, 44, 19, 3, 31, 39, 32, 49, 3, 40, 48, 87, 15, 3, 7, 3, 12, 3, 7, 3, 13, 21, 4, 22, 48, 48, 40, 48, 49, 32, 44, 49, 19, 3], [3, 18, 2]),
    ('bos', 'with_input'): ([3, 24, 50, 43, 32, 44, 19, 3, 30, 47, 32, 83, 42, 32, 49, 36, 81, 3, 37, 45, 42, 42, 45, 51, 86, 38, 3, 48, 36, 44, 49, 36, 44, 34, 36, 48, 3, 37, 47, 45, 43, 3, 29, 51, 32, 39, 40, 42, 40, 79, 45, 3, 23, 44, 38, 42, 40, 48, 39, 8, 4, 26, 40, 33, 50, 3, 44, 40, 3, 85, 8, 4, 22, 48, 48, 40, 48, 49, 32, 44, 49, 19, 3], [3, 30, 39, 36, 84, 51, 88, 3, 40, 48, 3, 85, 8, 2]),
    ('bos', 'input_only'): ([3, 24, 50, 43, 32, 44, 19, 3, 26, 40, 33, 50, 3, 44, 40, 3, 85, 8, 4, 22, 48, 48, 40, 48, 49, 32, 44, 49, 19, 3], [3, 30, 39, 36, 84, 51, 88, 3, 40, 48, 3, 85, 8, 2]),
    ('bos', 'empty_output'): ([3, 24, 50, 43, 32, 44, 19, 3, 29, 32, 52, 3, 44, 45, 49, 39, 86, 38, 8, 4, 22, 48, 48, 40, 48, 49, 32, 44, 49, 19, 3], [2]),
    ('bos', 'bengali_cut'): ([3, 24, 50, 43, 32, 44, 19, 3, 58, 76, 66, 72, 63, 75, 59, 75, 67, 3, 70, 72], [3, 30, 39, 36]),
    ('bos', 'both_long_cut'): ([3, 24, 50, 43, 32, 44, 19, 3, 28, 32, 49, 32, 42, 40, 32, 3, 48, 45, 42, 35, 3, 34, 42], [3, 25, 44, 3, 27, 32, 52, 3, 48, 39, 36, 3, 48, 45, 42, 35, 3]),
    ('bos', 'long_prompt_short_answer'): ([3, 24, 50, 43, 32, 44, 19, 3, 30, 47, 32, 83, 42, 32, 49], [3]),
    ('nobos', 'short'): ([42, 87, 79, 67, 80, 28, 223, 57, 74, 67, 86, 223, 75, 85, 223, 19, 24, 223, 15, 223, 21, 223, 15, 223, 22, 33, 201, 35, 85, 85, 75, 85, 86, 67, 80, 86, 28, 223], [27, 2]),
    ('nobos', 'with_input'): ([42, 87, 79, 67, 80, 28, 223, 54, 84, 67, 80, 85, 78, 67, 86, 71, 261, 223, 72, 81, 78, 78, 81, 89, 262, 73, 223, 85, 71, 80, 86, 71, 80, 69, 71, 85, 223, 72, 84, 81, 79, 223, 53, 89, 67, 74, 75, 78, 75, 259, 81, 223, 39, 80, 73, 78, 75, 85, 74, 16, 201, 44, 75, 68, 87, 223, 80, 75, 223, 263, 16, 201, 35, 85, 85, 75, 85, 86, 67, 80, 86, 28, 223], [54, 74, 71, 223, 67, 80, 85, 89, 264, 223, 75, 85, 223, 263, 16, 2]),
    ('nobos', 'input_only'): ([42, 87, 79, 67, 80, 28, 223, 44, 75, 68, 87, 223, 80, 75, 223, 263, 16, 201, 35, 85, 85, 75, 85, 86, 67, 80, 86, 28, 223], [54, 74, 71, 223, 67, 80, 85, 89, 264, 223, 75, 85, 223, 263, 16, 2]),
    ('nobos', 'empty_output'): ([42, 87, 79, 67, 80, 28, 223, 53, 67, 91, 223, 80, 81, 86, 74, 262, 73, 16, 201, 35, 85, 85, 75, 85, 86, 67, 80, 86, 28, 223], [2]),
    ('nobos', 'bengali_cut'): ([42, 87, 79, 67, 80, 28, 223, 159, 102, 253, 159, 103, 238, 159, 102, 110, 159, 102, 125, 159, 102, 104], [54, 74]),
    ('nobos', 'both_long_cut'): ([42, 87, 79, 67, 80, 28, 223, 48, 67, 86, 67, 78, 75, 67, 223, 85, 81, 78, 70, 223, 69, 78], [43, 80, 223, 47, 67, 91, 223, 85, 74, 71, 223, 85, 81, 78, 70, 223, 22, 26]),
    ('nobos', 'long_prompt_short_answer'): ([42, 87, 79, 67, 80, 28, 223, 54, 84, 67, 80, 85, 78, 67, 86], [23]),
}  # fmt: skip


@pytest.mark.parametrize("kind", ["bos", "nobos"])
@pytest.mark.parametrize("example", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_llamafactory_default_matches_llamafactory_053(kind, example):
    name, instruction, input_, output, cutoff = example
    tok = build_tokenizer(kind)
    if kind == "bos":  # the tokenizer does add BOS: the template must not
        assert tok("x")["input_ids"][0] == tok.bos_token_id
    (feature,), dropped = tokenize_examples(
        [Example(instruction=instruction, input=input_, output=output)],
        tok,
        get_prompt("llamafactory-default"),
        cutoff_len=cutoff,
    )
    prompt, answer = LF053[(kind, name)]
    assert dropped == 0
    assert feature["input_ids"] == prompt + answer
    assert feature["labels"] == [IGNORE_INDEX] * len(prompt) + answer


def test_every_template_says_how_it_tokenises():
    for tpl in PROMPTS.values():
        assert tpl.truncation in TRUNCATIONS and tpl.join in ("\n", "\n\n")
        assert isinstance(tpl.add_special_tokens, bool)
    assert (
        not get_prompt("llamafactory-default").add_special_tokens
        and not get_prompt("chat").add_special_tokens
    )
    assert get_prompt("alpaca").add_special_tokens and get_prompt("alpaca").truncation == "keep-answer"
    assert get_prompt("llamafactory-default").query("Translate.", "Hallo") == "Translate.\nHallo"
    assert get_prompt("alpaca").query("Translate.", "Hallo") == "Translate.\n\nHallo"
    assert get_prompt("alpaca").query("", "Hallo") == "Hallo"


def test_llamafactory_truncation_rule():
    # LLaMA-Factory 0.5.3: in proportion, at least one answer token, both cut on the right.
    assert truncated_lengths("llamafactory-0.5.3", 235, 4, 64) == (63, 1)
    assert truncated_lengths("llamafactory-0.5.3", 30, 30, 40) == (20, 20)
    assert truncated_lengths("llamafactory-0.5.3", 10, 5, 64) == (10, 5)  # fits: untouched
    assert truncate(list(range(10)), [100, 101, 2], 6, "llamafactory-0.5.3") == ([0, 1, 2, 3, 4], [100])


def test_keep_answer_truncation_rule():
    # a short answer stays whole with its EOS; the prompt loses its middle, keeps start and marker
    assert truncated_lengths("keep-answer", 235, 4, 64) == (60, 4)
    prompt, target = truncate(list(range(20)), [100, 2], 10, "keep-answer", marker_tokens=3)
    assert target == [100, 2] and prompt == [0, 1, 2, 3, 4, 17, 18, 19]
    # a short prompt stays whole; a long answer is cut on the right
    assert truncated_lengths("keep-answer", 5, 50, 20) == (5, 15)
    # both long: in proportion
    assert truncated_lengths("keep-answer", 30, 30, 40) == (20, 20)


def test_keep_answer_keeps_bos_marker_and_answer(tiny_tokenizer):
    """A prompt longer than the cutoff is no longer dropped: the model learns the answer after
    "### Response:", as it sees it at evaluation."""
    tpl = get_prompt("alpaca")
    ex = Example(instruction="word " * 400, output="The answer is 7.")
    (feat,), dropped = tokenize_examples([ex], tiny_tokenizer, tpl, cutoff_len=64)
    assert dropped == 0 and len(feat["input_ids"]) == 64
    n_prompt = feat["labels"].count(IGNORE_INDEX)
    answer = feat["input_ids"][n_prompt:]
    assert answer[-1] == tiny_tokenizer.eos_token_id
    assert tiny_tokenizer.decode(answer[:-1]) == " The answer is 7."
    prompt_text = tiny_tokenizer.decode(feat["input_ids"][:n_prompt])
    assert prompt_text.startswith("Below is an instruction") and prompt_text.endswith("### Response:")
