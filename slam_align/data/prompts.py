"""Prompt registry: named, versioned templates shared by training and evaluation.

Training and evaluation must render prompts identically, so both pick a template by
name from here and the run directory records ``name@version``. A template renders the
*prompt* (everything before the model's answer); the training target is appended after
it and only the target is scored by the loss.
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

    @property
    def id(self) -> str:
        return f"{self.name}@{self.version}"

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
        PromptTemplate(
            name="llamafactory-default",
            version=1,
            description="LLaMA-Factory's 'default' template, which the official SLAM code trained with.",
            template="Human: {query}\nAssistant: ",
            stop=("\nHuman:", "Human:", "\n\nQuestion:", "\nQuestion:"),
        ),
        PromptTemplate(
            name="chat",
            version=1,
            description="The tokenizer's own chat template (instruction-tuned models).",
            template="{query}",
            stop=("\n\nQuestion:",),
            uses_chat_template=True,
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
