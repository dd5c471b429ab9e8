"""Prompt registry: named, versioned templates shared by training and evaluation.

Training and evaluation must render prompts identically, so both pick a template by
name from here and the run directory records ``name@version``. A template renders the
*prompt* (everything before the model's answer); the training target is appended after
it and only the target is scored by the loss.

Besides its text, a template says how it becomes tokens, so that it can reproduce the
code it comes from token for token (:mod:`slam_align.data.tokenize` applies this):

- ``add_special_tokens``: whether the tokenizer's own special tokens (Llama's BOS) go
  before the prompt, in training and in evaluation;
- ``join``: how an example's instruction and input are joined (the non-empty ones);
- ``truncation``: how an example longer than the cutoff is cut (:data:`TRUNCATIONS`).

Bump ``version`` whenever any of these changes what a template produces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slam_align.data.languages import language_name
from slam_align.errors import SlamError

_ALPACA_HEADER = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
)
COT_TRIGGER = "Let's think step by step."

# How an example longer than the cutoff is cut (see slam_align.data.tokenize.truncate):
TRUNCATIONS = {
    "keep-answer": "keep the answer and its EOS whole and cut the prompt's question, keeping the prompt's "
    "start and its closing marker; split in proportion when both are long",
    "llamafactory-0.5.3": "LLaMA-Factory 0.5.3's: the budget is split in proportion to the lengths (at least "
    "one answer token) and both parts are cut on the right (llmtuner/data/utils.py:42-46, template.py:129-152)",
}


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: int
    description: str
    template: str  # uses {query}; may use {language}
    # Text that marks the model starting an invented next example: generation stops there
    # and answer extraction cuts the output there (see slam_align.evaluate.extract).
    stop: tuple[str, ...] = field(default_factory=tuple)
    uses_chat_template: bool = False
    add_special_tokens: bool = True  # the tokenizer's BOS before the prompt (a chat template writes its own)
    join: str = "\n\n"  # between an example's instruction and its input
    truncation: str = "keep-answer"  # one of TRUNCATIONS

    def __post_init__(self):
        if self.truncation not in TRUNCATIONS:
            raise ValueError(f"{self.name}: unknown truncation {self.truncation!r}")

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def suffix(self) -> str:
        """The text after the question ("\\n\\n### Response:"): what keep-answer truncation keeps."""
        return "" if self.uses_chat_template else self.template.rsplit("{query}", 1)[-1]

    def query(self, instruction: str, input: str = "") -> str:
        """What the template receives for an example: its non-empty instruction and input, joined."""
        return self.join.join(part for part in (instruction, input) if part)

    def render(self, query: str, *, lang: str = "en", cot: bool = False, tokenizer=None) -> str:
        """The prompt for one question. ``cot`` appends "Let's think step by step." (MetaMath eval)."""
        if self.uses_chat_template:
            if tokenizer is None or not getattr(tokenizer, "chat_template", None):
                raise SlamError(
                    f"prompt template '{self.name}' needs a tokenizer with a chat template; "
                    "choose another with --prompt (alpaca, mathoctopus, llamafactory-default)"
                )
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": query}], tokenize=False, add_generation_prompt=True
            )
            return text + (COT_TRIGGER if cot else "")
        prompt = self.template.format(query=query, language=_lang_name(lang))
        if cot:
            prompt += " " + COT_TRIGGER
        return prompt


def _lang_name(code: str) -> str:
    try:
        return language_name(code)
    except SlamError:
        return code


PROMPTS: dict[str, PromptTemplate] = {
    t.name: t
    for t in [
        PromptTemplate(
            name="alpaca",
            version=1,
            description="The Alpaca template MetaMath and QAlign trained and evaluate with (the paper's default).",
            template=_ALPACA_HEADER + "### Instruction:\n{query}\n\n### Response:",
            stop=("### Instruction", "\n\n### ", "\n\nInstruction:", "\n\nQuestion:", "\nQuestion:"),
        ),
        PromptTemplate(
            name="mathoctopus",
            version=1,
            description="MathOctopus' template: asks for the answer in the question's language.",
            template=(
                "Below is an instruction that describes a task. Write a response that appropriately "
                "completes the request in {language}. Please answer in {language}.\n\n"
                "### Instruction:\n{query}\n\n### Response:"
            ),
            stop=("### Instruction", "\n\n### ", "\n\nQuestion:", "\nQuestion:"),
        ),
        # LLaMA-Factory 0.5.3, the version fmm170/SLAM forked (src/llmtuner/__init__.py), token for
        # token: user text = "\n".join(non-empty [instruction, input]) (data/aligner.py:25-32);
        # "Human: {content}\nAssistant: " (data/template.py:454-459); every piece encoded with
        # add_special_tokens=False, so never a BOS (template.py:113-116); answer + EOS
        # (template.py:216,219); proportional truncation (data/utils.py:42-46). v2: no BOS, one newline.
        PromptTemplate(
            name="llamafactory-default",
            version=2,
            description="LLaMA-Factory 0.5.3's 'default' template, which the official SLAM code trained with "
            "(no BOS, instruction and input joined by one newline, LLaMA-Factory's truncation).",
            template="Human: {query}\nAssistant: ",
            stop=("\nHuman:", "Human:", "\n\nQuestion:", "\nQuestion:"),
            add_special_tokens=False,
            join="\n",
            truncation="llamafactory-0.5.3",
        ),
        PromptTemplate(
            name="chat",
            version=1,
            description="The tokenizer's own chat template (instruction-tuned models).",
            template="{query}",
            stop=("\n\nQuestion:",),
            uses_chat_template=True,
            add_special_tokens=False,
        ),
    ]
}

DEFAULT_PROMPT = "alpaca"


def get_prompt(name: str) -> PromptTemplate:
    """Look a template up by name (``name`` or ``name@version``)."""
    base, _, version = name.partition("@")
    if base not in PROMPTS:
        raise SlamError(f"unknown prompt template '{name}'; expected one of: {', '.join(PROMPTS)}")
    tpl = PROMPTS[base]
    if version and version != str(tpl.version):
        raise SlamError(f"prompt template '{base}' has version {tpl.version}, not {version}")
    return tpl
