"""LLaMA-Factory 0.5.3 reference data for the ``llamafactory-default`` template test.

Two tiny tokenizers built here from a fixed vocabulary (no training, no download, the same
ids under any ``tokenizers`` release): ``bos`` is Llama-like (Metaspace, ``<s>`` added by
its post-processor) and ``nobos`` GPT-2/Qwen-like (byte-level, never a BOS). ``EXAMPLES``
are Alpaca rows with a cutoff each.

The expected ids in ``tests/test_templates.py`` were written down by running LLaMA-Factory
0.5.3's own data pipeline (PyPI ``llmtuner==0.5.3``, the version fmm170/SLAM forked:
``llmtuner.data.get_dataset(stage="sft")`` with ``template="default"``) on these rows::

    python tests/lf053_reference.py      # in an environment with llmtuner==0.5.3

which prints them. Nothing of LLaMA-Factory is copied here: it is only called.
"""

from __future__ import annotations

# (name, instruction, input, output, cutoff_len)
EXAMPLES = [
    ("short", "What is 16 - 3 - 4?", "", "9", 1024),
    ("with_input", "Translate the following sentences from Swahili to English.", "Jibu ni 18.",
     "The answer is 18.", 1024),
    ("input_only", "", "Jibu ni 18.", "The answer is 18.", 1024),
    ("empty_output", "Say nothing.", "", "", 1024),
    ("bengali_cut", "জ্যানেটের হাঁসগুলি প্রতিদিন ১৬টি করে ডিম পাড়ে।", "", "The answer is 18.", 24),
    ("both_long_cut", "Natalia sold clips to 48 of her friends in April, and then half as many in May.",
     "", "In May she sold 48 / 2 = 24 clips, so 48 + 24 = 72 in all. The answer is 72.", 40),
    ("long_prompt_short_answer", "Translate the following sentences from Swahili to English. "
     "Natalia aliuza klipu kwa marafiki zake 48 mwezi Aprili.", "", "5", 16),
]  # fmt: skip

SPECIALS = ["<unk>", "<s>", "</s>"]
_MERGES = [("▁", "t"), ("▁t", "h"), ("▁th", "e"), ("▁", "a"), ("n", "s"), ("▁a", "ns"), ("1", "8"),
           ("i", "n"), ("▁", "1"), ("e", "r")]  # fmt: skip


def _chars() -> list[str]:
    text = "".join(x for name, i, n, o, c in EXAMPLES for x in (i, n, o)) + "Human: \nAssistant: "
    return sorted(set(text) - {" "})


def build_tokenizer(kind: str):
    """``bos``: BPE + Metaspace + ``<s> $A``; ``nobos``: byte-level BPE, no post-processor."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if kind == "bos":
        symbols = ["▁", *_chars()]
        merges = _MERGES
        # (the decoder plays no part in the ids; its arguments differ between tokenizers releases)
        pre, dec = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first"), decoders.Metaspace()
    elif kind == "nobos":
        symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
        merges = [("Ġ", "t"), ("Ġt", "h"), ("Ġth", "e"), ("i", "n"), ("1", "8"), ("e", "r")]
        pre, dec = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    else:
        raise ValueError(kind)
    vocab = {s: i for i, s in enumerate(SPECIALS)}
    for s in [*symbols, *(a + b for a, b in merges)]:
        vocab.setdefault(s, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>" if kind == "bos" else None))
    tok.pre_tokenizer = pre
    tok.decoder = dec
    if kind == "bos":
        tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def _llamafactory_ids() -> dict:
    """Run LLaMA-Factory 0.5.3's own pipeline (stage sft, template default) on ``EXAMPLES``."""
    import json
    import os
    import tempfile

    from llmtuner.data import get_dataset
    from llmtuner.hparams import DataArguments, ModelArguments
    from llmtuner.model.patcher import patch_tokenizer
    from transformers import Seq2SeqTrainingArguments

    out = {}
    for kind in ("bos", "nobos"):
        for name, instruction, input_, output, cutoff in EXAMPLES:
            tok = build_tokenizer(kind)
            patch_tokenizer(tok)
            with tempfile.TemporaryDirectory() as wd:
                tok.save_pretrained(os.path.join(wd, "tok"))
                with open(os.path.join(wd, "ref.json"), "w", encoding="utf-8") as f:
                    json.dump([{"instruction": instruction, "input": input_, "output": output}], f)
                with open(os.path.join(wd, "dataset_info.json"), "w") as f:
                    json.dump({"ref": {"file_name": "ref.json"}}, f)
                ds = get_dataset(
                    tok,
                    ModelArguments(model_name_or_path=os.path.join(wd, "tok")),
                    DataArguments(template="default", dataset="ref", dataset_dir=wd, cutoff_len=cutoff,
                                  overwrite_cache=True),
                    Seq2SeqTrainingArguments(output_dir=os.path.join(wd, "out"), do_train=True,
                                             report_to="none", use_cpu=True),
                    stage="sft",
                )  # fmt: skip
                row = ds[0]
            n_prompt = sum(1 for x in row["labels"] if x == -100)
            assert row["labels"][n_prompt:] == row["input_ids"][n_prompt:]
            out[(kind, name)] = (row["input_ids"][:n_prompt], row["input_ids"][n_prompt:])
    return out


if __name__ == "__main__":
    for key, (prompt, answer) in _llamafactory_ids().items():
        print(f"    {key!r}: ({prompt}, {answer}),")
