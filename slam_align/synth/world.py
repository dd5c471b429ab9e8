"""A deterministic synthetic multilingual world of arithmetic word problems.

English problems of one to ``max_steps`` steps ("Tom has 3 apples. Tom buys 4 apples.
How many apples does Tom have now?") come with a chain-of-thought answer in English
("3 + 4 = 7. The answer is 7."). Nine stand-in languages, named ``syn-bn`` ... ``syn-es``
so that nobody mistakes them for the real ones, express the same problems the way real
languages differ from English:

* their own lexicon, generated from their own syllables and script (Bengali, Thai,
  kana, Han, Cyrillic, Latin); ``syn-es``, ``syn-fr`` and ``syn-de`` share word roots
  (with their own endings), as Spanish, French and German share many;
* their own word order: verb-final (SOV) for bn, ja, de; noun-before-numeral for th,
  sw, ja; question words in place (wh-in-situ) for zh, ja, bn, th, sw;
* their own numerals: Bengali digits for ``syn-bn`` and Thai digits for ``syn-th``;
  classifiers after numerals for zh, ja, th; their own punctuation.

Everything is a pure function of :class:`WorldSettings` (which include the seed), so
the same settings always give the same text, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass

SYN_LANGS: tuple[str, ...] = (
    "syn-bn",
    "syn-th",
    "syn-sw",
    "syn-ja",
    "syn-zh",
    "syn-de",
    "syn-fr",
    "syn-ru",
    "syn-es",
)
ALL_LANGS: tuple[str, ...] = (*SYN_LANGS, "en")
# Llama 2's pretraining shares (Touvron et al. 2023, Table 10) relative to German's 0.17%:
# fr 0.16, zh/es/ru 0.13, ja 0.10; bn, th, sw fall under the table's 0.005% cut-off.
EXPOSURE: tuple[tuple[str, float], ...] = (
    ("syn-bn", 0.03),
    ("syn-th", 0.03),
    ("syn-sw", 0.03),
    ("syn-ja", 0.59),
    ("syn-zh", 0.76),
    ("syn-de", 1.0),
    ("syn-fr", 0.94),
    ("syn-ru", 0.76),
    ("syn-es", 0.76),
)
HIGH_RESOURCE: tuple[str, ...] = ("syn-ja", "syn-zh", "syn-de", "syn-fr", "syn-ru", "syn-es")
LOW_RESOURCE: tuple[str, ...] = ("syn-bn", "syn-th", "syn-sw")
# MetaMathQA (395K) over SLAM's multilingual mixture (9 languages x 7.5K x 2 kinds): two-stage's
# English reasoning set is this many times the mixture, as in the paper.
METAMATHQA_RATIO = 395_000 / (9 * 7_500 * 2)

NAMES = ("Tom", "Ann", "Sam", "Mia", "Ben", "Eva", "Leo", "Zoe", "Max", "Ivy")
OBJECTS = ("apples", "pens", "books", "cards", "coins", "eggs", "shells", "stamps", "cups", "kites")
ADD_VERBS = ("buys", "finds", "gets", "wins")
SUB_VERBS = ("sells", "loses", "uses", "gives")
# Words of the question sentence, as concepts (English spelling shown).
FUNCTION_WORDS = {"have": "have", "how_many": "How many", "now": "now", "has": "has"}


@dataclass(frozen=True)
class WorldSettings:
    """Everything the world's text depends on. Two equal settings give identical worlds."""

    seed: int = 0
    max_steps: int = 3  # operations per problem: 1..max_steps
    max_total: int = 20  # every number in a problem and its running total stays in 0..max_total
    num_names: int = 8
    num_objects: int = 8
    langs: tuple[str, ...] = SYN_LANGS
    # How much of each language the base model's pretraining saw, relative to the most seen
    # non-English language (1.0). The ratios are Llama 2's pretraining shares (docs/demo.md).
    exposure: tuple[tuple[str, float], ...] = EXPOSURE
    # Sizes of each split (problems; the parallel splits are rendered in every language).
    pretrain_en: int = 6000  # English problems with answers (the base model's "MetaMath" data)
    # Per non-English language at exposure 1.0 (scaled by the language's exposure):
    pretrain_foreign: int = 600  # monolingual text (unlabelled questions)
    parallel_sentences: int = 60  # parallel text: problems whose sentences are paired with English
    code_switched: int = 300  # questions in the language worked in English (mixed-language math)
    align: int = 80  # problems per language for alignment (question alignment + X -> English answer)
    reasoning: int = 6000  # English problems with answers for two-stage's stage 2 (MetaMathQA's role)
    identify: int = 32  # parallel problems for layer identification and the similarity statistic
    test: int = 200  # parallel held-out problems per language for evaluation

    def to_dict(self) -> dict:
        d = asdict(self)
        d["langs"] = list(self.langs)
        d["exposure"] = dict(self.exposure)
        return d

    def per_language(self, amount: int) -> list[int]:
        """``amount`` at exposure 1.0, scaled by each language's exposure (in ``langs`` order)."""
        weights = dict(self.exposure)
        return [round(amount * weights.get(lang, 1.0)) for lang in self.langs]

    def fingerprint(self) -> str:
        """Short hash of the settings (the base-model cache key uses it)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Problem:
    """A problem as meaning: who, what, a starting amount and the steps (verb, amount)."""

    name: str
    obj: str
    start: int
    steps: tuple[tuple[str, int], ...]

    @property
    def answer(self) -> int:
        total = self.start
        for verb, n in self.steps:
            total = total + n if verb in ADD_VERBS else total - n
        return total

    def english_sentences(self) -> list[str]:
        parts = [f"{self.name} has {self.start} {self.obj}."]
        parts += [f"{self.name} {verb} {n} {self.obj}." for verb, n in self.steps]
        parts.append(f"How many {self.obj} does {self.name} have now?")
        return parts

    def english(self) -> str:
        return " ".join(self.english_sentences())

    def chain_of_thought(self) -> str:
        """English reasoning, one equation per step, ending "The answer is N."."""
        total, parts = self.start, []
        for verb, n in self.steps:
            op = "+" if verb in ADD_VERBS else "-"
            new = total + n if op == "+" else total - n
            parts.append(f"{total} {op} {n} = {new}.")
            total = new
        parts.append(f"The answer is {total}.")
        return " ".join(parts)


# ---------------------------------------------------------------------------------------
# Languages: grammar rules and generated lexicons
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grammar:
    script: str  # key of SCRIPTS
    order: str = "SVO"  # "SVO" or "SOV" (verb-final)
    noun_first: bool = False  # "apples 3" instead of "3 apples"
    in_situ: bool = False  # question word stays in the object's place
    classifier: bool = False  # a measure word after the numeral (zh, ja, th)
    digits: str = "0123456789"
    period: str = "."
    question_mark: str = "?"
    root_family: str = ""  # languages of one family share word roots
    noun_ending: str = ""
    verb_ending: str = ""
    capitalize_nouns: bool = False


GRAMMARS: dict[str, Grammar] = {
    "syn-bn": Grammar("bengali", order="SOV", in_situ=True, digits="০১২৩৪৫৬৭৮৯", period="।"),
    "syn-th": Grammar("thai", noun_first=True, in_situ=True, classifier=True, digits="๐๑๒๓๔๕๖๗๘๙"),
    "syn-sw": Grammar("latin-sw", noun_first=True, in_situ=True),
    "syn-ja": Grammar(
        "kana", order="SOV", noun_first=True, in_situ=True, classifier=True, period="。", question_mark="？"
    ),
    "syn-zh": Grammar("han", in_situ=True, classifier=True, period="。", question_mark="？"),
    "syn-de": Grammar(
        "latin", order="SOV", root_family="west", noun_ending="en", verb_ending="t", capitalize_nouns=True
    ),
    "syn-fr": Grammar("latin", root_family="west", noun_ending="es", verb_ending="e"),
    "syn-ru": Grammar("cyrillic", verb_ending="ет"),
    "syn-es": Grammar("latin", root_family="west", noun_ending="os", verb_ending="a"),
}

# Syllables per script (consonant-vowel shapes); words are 1-3 of them.
_HAN = "山水火木金土日月天人口手心田石竹米糸花草鳥魚犬牛馬羊車門雨雪風雲光海川林森"
SCRIPTS: dict[str, list[str]] = {
    "latin": [c + v for c in "bdfglmnprstv" for v in "aeiou"],
    "latin-sw": [c + v for c in ("k", "m", "w", "ch", "z", "t", "n", "sh", "j", "b") for v in "aeiou"],
    "cyrillic": [c + v for c in "бвгдзклмнпрст" for v in "аеиоуя"],
    "bengali": [c + v for c in "কগচজটডতদনপবমরলসহ" for v in ("", "া", "ি", "ু", "ে", "ো")],
    "thai": [c + v for c in "กคงจชซดตทนบปพมยรลวสห" for v in ("", "า", "ิ", "ี", "ุ", "ู")],
    "kana": list("かきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもらりるれろ"),
    "han": list(_HAN),
}
_CLASSIFIER_CONCEPT = "classifier"


def _rng(*parts) -> random.Random:
    """A random generator seeded by a stable hash of ``parts`` (never Python's salted hash)."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def concepts(settings: WorldSettings) -> list[str]:
    """Every word a problem can use, as its English spelling (the lexicon's keys)."""
    return [
        *NAMES[: settings.num_names],
        *OBJECTS[: settings.num_objects],
        *ADD_VERBS,
        *SUB_VERBS,
        *FUNCTION_WORDS,
        _CLASSIFIER_CONCEPT,
    ]


def _word(rng: random.Random, script: str, syllables: tuple[int, int]) -> str:
    pool = SCRIPTS[script]
    return "".join(rng.choice(pool) for _ in range(rng.randint(*syllables)))


def build_lexicon(lang: str, settings: WorldSettings) -> dict[str, str]:
    """English concept -> word of ``lang``. Distinct words; shared roots within a family."""
    grammar = GRAMMARS[lang]
    lexicon: dict[str, str] = {}
    used: set[str] = set()
    english = {w.lower() for c in concepts(settings) for w in c.split()}
    for concept in concepts(settings):
        is_name = concept in NAMES
        if is_name and grammar.script in ("latin", "latin-sw"):
            lexicon[concept] = concept  # Latin-script languages keep names as they are
            continue
        kind = "verb" if concept in ADD_VERBS + SUB_VERBS + ("have", "has") else "noun"
        for attempt in range(100):
            if grammar.root_family and not is_name:
                # The root depends on the family, not the language: es/fr/de share it.
                root = _word(_rng(settings.seed, grammar.root_family, concept, attempt), "latin", (2, 2))
                ending = grammar.verb_ending if kind == "verb" else grammar.noun_ending
                word = root + ending
                if grammar.capitalize_nouns and kind == "noun":
                    word = word.capitalize()
            else:
                size = (1, 2) if grammar.script == "han" else (2, 3)
                word = _word(_rng(settings.seed, lang, concept, attempt), grammar.script, size)
                if kind == "verb" and grammar.verb_ending:
                    word += grammar.verb_ending
            if concept == "how_many" and grammar.script == "latin-sw":
                word = word + "ngapi"  # a recognisable question suffix, like Swahili's -ngapi
            if word not in used and word.lower() not in english:
                break
        else:  # pragma: no cover - the syllable pools are far larger than the lexicon
            raise RuntimeError(f"could not make a distinct word for {concept!r} in {lang}")
        used.add(word)
        lexicon[concept] = word
    return lexicon


class Language:
    """Renders :class:`Problem` meanings as text of one synthetic language."""

    def __init__(self, code: str, settings: WorldSettings):
        self.code = code
        self.grammar = GRAMMARS[code]
        self.lexicon = build_lexicon(code, settings)

    def numeral(self, n: int) -> str:
        return "".join(self.grammar.digits[int(d)] for d in str(n))

    def _amount(self, n: int | None, obj: str) -> list[str]:
        g, noun = self.grammar, self.lexicon[obj]
        num = [self.lexicon["how_many"]] if n is None else [self.numeral(n)]
        if g.classifier:
            num.append(self.lexicon[_CLASSIFIER_CONCEPT])
        return [noun, *num] if g.noun_first else [*num, noun]

    def _clause(self, subject: str, verb: str, obj_words: list[str]) -> list[str]:
        s, v = self.lexicon[subject], self.lexicon[verb]
        return [s, *obj_words, v] if self.grammar.order == "SOV" else [s, v, *obj_words]

    def sentences(self, p: Problem) -> list[str]:
        """One sentence per clause: the start, each step, then the question."""
        g = self.grammar
        out = [self._clause(p.name, "has", self._amount(p.start, p.obj))]
        out += [self._clause(p.name, verb, self._amount(n, p.obj)) for verb, n in p.steps]
        question = self._clause(p.name, "have", self._amount(None, p.obj))
        if g.in_situ:  # "Tom now has how-many apples?" (question word where the answer goes)
            question.insert(1, self.lexicon["now"])
        else:  # "How-many apples has Tom now?" (question phrase fronted)
            amount = self._amount(None, p.obj)
            question = [*amount, self.lexicon["have"], self.lexicon[p.name], self.lexicon["now"]]
        ends = [g.period] * (len(out)) + [g.question_mark]
        return [" ".join(words) + end for words, end in zip([*out, question], ends)]

    def render(self, p: Problem) -> str:
        return " ".join(self.sentences(p))


# ---------------------------------------------------------------------------------------
# Problems and splits
# ---------------------------------------------------------------------------------------


def random_problem(rng: random.Random, settings: WorldSettings, num_steps: int | None = None) -> Problem:
    """A problem whose running total stays in 0..max_total (so every step makes sense)."""
    name = rng.choice(NAMES[: settings.num_names])
    obj = rng.choice(OBJECTS[: settings.num_objects])
    steps_n = num_steps or rng.randint(1, settings.max_steps)
    while True:
        total = start = rng.randint(1, settings.max_total)
        steps = []
        for _ in range(steps_n):
            can_add, can_sub = total < settings.max_total, total > 0
            if can_add and (not can_sub or rng.random() < 0.5):
                n = rng.randint(1, settings.max_total - total)
                steps.append((rng.choice(ADD_VERBS), n))
                total += n
            elif can_sub:
                n = rng.randint(1, total)
                steps.append((rng.choice(SUB_VERBS), n))
                total -= n
        if len(steps) == steps_n:
            return Problem(name, obj, start, tuple(steps))


class World:
    """The whole world for one :class:`WorldSettings`: languages and disjoint problem splits."""

    def __init__(self, settings: WorldSettings):
        self.settings = settings
        self.languages = {code: Language(code, settings) for code in settings.langs}
        self._splits: dict[str, list[Problem]] | None = None

    @property
    def langs(self) -> list[str]:
        return [*self.settings.langs, "en"]

    def render(self, problem: Problem, lang: str) -> str:
        return problem.english() if lang == "en" else self.languages[lang].render(problem)

    def splits(self) -> dict[str, list[Problem]]:
        """Disjoint sets of problems (by English question): test first, so it is never trained on."""
        if self._splits is not None:
            return self._splits
        s = self.settings
        sizes = {
            "test": s.test,
            "identify": s.identify,
            "align": s.align * len(s.langs),
            "reasoning": s.reasoning,
            "pretrain_en": s.pretrain_en,
            "pretrain_foreign": sum(s.per_language(s.pretrain_foreign)),
            "parallel": sum(s.per_language(s.parallel_sentences)),
            "code_switched": sum(s.per_language(s.code_switched)),
        }
        seen: set[str] = set()
        out: dict[str, list[Problem]] = {}
        for split, size in sizes.items():
            rng = _rng(s.seed, "split", split)
            problems: list[Problem] = []
            tries = 0
            # Test and identification sets use each step count equally often.
            while len(problems) < size:
                tries += 1
                if tries > size * 200:
                    raise RuntimeError(f"world too small for {size} distinct '{split}' problems")
                steps = None
                if split in ("test", "identify"):
                    steps = 1 + len(problems) % s.max_steps
                p = random_problem(rng, s, steps)
                key = p.english()
                # Held-out sets are distinct from everything; training sets may repeat within
                # themselves (as real corpora do) but never contain a held-out problem.
                if key in seen and (split in ("test", "identify") or key in self._held_out_keys(out)):
                    continue
                seen.add(key)
                problems.append(p)
            out[split] = problems
        self._splits = out
        return out

    @staticmethod
    def _held_out_keys(out: dict[str, list[Problem]]) -> set[str]:
        return {p.english() for split in ("test", "identify") for p in out.get(split, [])}

    # -- records the rest of the toolkit reads --------------------------------------------

    def benchmark_rows(self, split: str = "test") -> list[dict]:
        """Parallel problems as the JSONL ``load_benchmark('jsonl:PATH')`` reads."""
        rows = []
        for lang in self.langs:
            for i, p in enumerate(self.splits()[split]):
                rows.append(
                    {
                        "lang": lang,
                        "index": i,
                        "question": self.render(p, lang),
                        "answer": p.answer,
                        "question_en": p.english(),
                    }
                )
        return rows

    def alignment_rows(self) -> tuple[list[dict], list[dict]]:
        """SLAM's data as Alpaca rows: (question alignment X -> English question, X question -> English answer)."""
        translation, response = [], []
        problems = self.splits()["align"]
        per = self.settings.align
        for li, lang in enumerate(self.settings.langs):
            for p in problems[li * per : (li + 1) * per]:
                x = self.render(p, lang)
                translation.append(
                    {
                        "instruction": TRANSLATE_INSTRUCTION,
                        "input": x,
                        "output": p.english(),
                        "lang": lang,
                        "kind": "alignment",
                    }
                )
                response.append(
                    {
                        "instruction": x,
                        "input": "",
                        "output": p.chain_of_thought(),
                        "lang": lang,
                        "kind": "response",
                    }
                )
        return translation, response

    def reasoning_rows(self) -> list[dict]:
        """English problems with chain-of-thought answers: two-stage's stage-2 data (MetaMathQA's role)."""
        return [
            {
                "instruction": p.english(),
                "input": "",
                "output": p.chain_of_thought(),
                "lang": "en",
                "kind": "response",
            }
            for p in self.splits()["reasoning"]
        ]

    def _by_language(self, split: str, amount: int):
        """(language, its problems) of a split whose size differs by language (its exposure)."""
        problems, start = self.splits()[split], 0
        for lang, n in zip(self.settings.langs, self.settings.per_language(amount)):
            yield lang, problems[start : start + n]
            start += n

    def pretraining_documents(self) -> tuple[list[tuple[str, str]], list[str]]:
        """((question, English answer) pairs, plain text): the base model's pretraining.

        The pairs are English problems and code-switched ones (a question in another language
        worked in English); the text is monolingual questions and parallel sentence pairs.
        Every non-English amount follows the language's exposure."""
        s = self.settings
        problems = [(p.english(), p.chain_of_thought()) for p in self.splits()["pretrain_en"]]
        for lang, ps in self._by_language("code_switched", s.code_switched):
            problems += [(self.render(p, lang), p.chain_of_thought()) for p in ps]
        text: list[str] = []
        for lang, ps in self._by_language("pretrain_foreign", s.pretrain_foreign):
            text += [self.render(p, lang) for p in ps]
        for lang, ps in self._by_language("parallel", s.parallel_sentences):
            for p in ps:
                pairs = zip(self.languages[lang].sentences(p), p.english_sentences())
                text += [f"{x} = {en}" for x, en in pairs]
        return problems, text

    def tokenizer_corpus(self) -> list[str]:
        """Text covering every word and numeral of the world (to train its tokenizer)."""
        english, text = self.pretraining_documents()
        corpus = [f"{q} {a}" for q, a in english] + text
        corpus += [TRANSLATE_INSTRUCTION] * 10
        corpus += [self.render(p, lang) for p in self.splits()["test"] for lang in self.langs]
        return corpus


TRANSLATE_INSTRUCTION = "Translate the following question into English."


def _reasoning_size(align: int, langs: int = len(SYN_LANGS)) -> int:
    """Two-stage's English reasoning set in the paper's proportion to SLAM's mixture."""
    return round(METAMATHQA_RATIO * 2 * langs * align)


def quick_settings(seed: int = 0) -> WorldSettings:
    """The small, easier world of ``slam demo --quick`` (minutes on 2 CPU cores)."""
    return WorldSettings(
        seed=seed,
        max_steps=2,
        max_total=10,
        num_names=4,
        num_objects=4,
        pretrain_en=3000,
        pretrain_foreign=300,
        parallel_sentences=40,
        code_switched=300,
        align=60,
        reasoning=_reasoning_size(60),
        identify=24,
        test=200,
    )


def full_settings(seed: int = 0) -> WorldSettings:
    return WorldSettings(seed=seed, reasoning=_reasoning_size(WorldSettings.align))
