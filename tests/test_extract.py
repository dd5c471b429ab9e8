"""The answer-extraction table: every rule of slam_align.evaluate.extract, in every language."""

from __future__ import annotations

import json

import pytest

from slam_align.data.benchmarks import parse_gold
from slam_align.data.prompts import PROMPTS
from slam_align.evaluate.extract import (
    answers_match,
    base_language,
    cut_at_stop,
    extract_answer,
    find_numbers,
    last_number,
    last_number_correct,
    normalize,
    peer_gold,
)

NONE = None

# (text, lang, expected). Grouped by rule; each rule is exercised in the languages where it matters.
CASES = [
    # --- "the answer is" statements: English and native phrasings (MGSM exemplars' wording) ---
    ("5 + 6 = 11. The answer is 11.", "en", 11),
    ("We get 3 apples. The answer is: 18", "en", 18),  # MetaMath
    ("The final answer is 42", "en", 42),
    ("So the answer would be 7 dollars, not 9.", "en", 7),
    ("5 + 6 = 11. Die Antwort ist 11.", "de", 11),
    ("74 - 35 = 39. Die Antwort lautet 39.", "de", 39),
    ("5 + 6 = 11. La réponse est 11.", "fr", 11),
    ("La reponse est : 12 euros.", "fr", 12),
    ("5 + 6 = 11. La respuesta es 11.", "es", 11),
    ("La respuesta final es 8 dólares.", "es", 8),
    ("5 + 6 = 11. Ответ — 11.", "ru", 11),
    ("Ответ: 39", "ru", 39),
    ("Ответ равен 33.", "ru", 33),
    ("5 + 6 = 11. Jibu ni 11.", "sw", 11),
    ("ดังนั้น 5 + 6 = 11 คำตอบคือ 11", "th", 11),
    ("5 + 6 = 11। উত্তর হল 11।", "bn", 11),
    ("মোট ৩৫টি। উত্তর হলো ৩৩।", "bn", 33),
    ("5+6=11. సమాధానం 11.", "te", 11),
    ("5 + 6 = 11。答案是 11。", "zh", 11),
    ("一共 74 - 35 = 39 块。答案为39", "zh", 39),
    ("5+6=11。答えは11です。", "ja", 11),
    ("74-35=39個のチョコレート。答えは39個。", "ja", 39),
    # colon or not, label forms need the number right after
    ("Answer: 18", "en", 18),
    ("**Final Answer:** $18", "en", 18),
    ("Antwort: 12", "de", 12),
    ("Réponse : 7", "fr", 7),
    ("Respuesta: 9", "es", 9),
    ("Jibu: 4", "sw", 4),
    ("答案：20", "zh", 20),
    ("答え：15", "ja", 15),
    ("คำตอบ: 6", "th", 6),
    ("উত্তর: ৫", "bn", 5),
    # a label followed by words is not a final answer ("Step-by-Step Answer:" prefixes)
    ("Step-by-Step Answer: Roger started with 5 balls. 5 + 6 = 11.", "en", 11),
    ("Schritt-für-Schritt-Antwort: Roger hat 5 Bälle. 5 + 6 = 11.", "de", 11),
    ("ধাপে ধাপে উত্তর: রজারের 5টি বল। 5 + 6 = 11।", "bn", 11),
    ("Jibu la Hatua kwa Hatua: Roger ana mipira 5. 5 + 6 = 11.", "sw", 11),
    # the LAST answer statement wins; its first number, or the number after its last "="
    ("The answer is 5. Wait, I made an error. The answer is 7.", "en", 7),
    ("The answer is 5 + 6 = 11.", "en", 11),
    ("The answer is 18 dollars, which is 3 times 6.", "en", 18),
    ("The answer is below. 3 + 4 = 7", "en", 7),  # statement without a number: fall back
    ("The answer is:\n\n18", "en", 18),
    ("She sold 48/2 = <<48/2=24>>24 clips. 48+24 = <<48+24=72>>72\n#### 72 in total, 3 more", "en", 72),
    ("She pays 20 - 2 = 18 dollars. The answer is 18. She had 100 dollars.", "en", 18),
    # answer language differs from question language (SLAM answers in English)
    ("16 - 3 - 4 = 9. The answer is 9.", "bn", 9),
    ("16 - 3 - 4 = 9. The answer is 9.", "syn-th", 9),
    # --- no answer statement: the last number ---
    ("16 - 3 - 4 = 9", "en", 9),
    ("Sie hat 16 Eier und isst 3. Es bleiben 13", "de", 13),
    ("她有 16 个鸡蛋，吃了 3 个，剩下 13 个", "zh", 13),
    ("彼女は16個の卵を持ち、3個食べ、13個残ります", "ja", 13),
    # --- no number: None (scored wrong), never 0 ---
    ("I don't know.", "en", NONE),
    ("", "en", NONE),
    ("Je ne sais pas.", "fr", NONE),
    ("答案是不知道", "zh", NONE),
    ("The answer is twelve.", "en", NONE),
    # --- run-on text: cut at stop sequences before anything else ---
    ("The answer is 18.\n\nQuestion: Tom has 3 apples. The answer is 3.", "en", 18),
    ("18 eggs.\n\n### Instruction:\nJohn has 5 cats.\n\n### Response: 5", "en", 18),
    ("Es bleiben 9.\nFrage: Tom hat 4 Äpfel. Die Antwort lautet 4.", "de", 9),
    ("剩下 9 个。\n问题：汤姆有 4 个苹果。答案是 4。", "zh", 9),
    ("残りは9個。\n問題：トムは4個。答えは4です。", "ja", 9),
    ("Осталось 9.\nЗадача: у Тома 4 яблока. Ответ — 4.", "ru", 9),
    ("Zimebaki 9.\nSwali: Tom ana 4. Jibu ni 4.", "sw", 9),
    ("เหลือ 9\nโจทย์: ทอมมี 4 คำตอบคือ 4", "th", 9),
    ("৯টি বাকি।\nপ্রশ্ন: টমের ৪টি। উত্তর হল ৪।", "bn", 9),
    ("Il reste 9.\nQuestion : Tom a 4 pommes. La réponse est 4.", "fr", 9),
    ("Quedan 9.\nPregunta: Tom tiene 4. La respuesta es 4.", "es", 9),
    ("The answer is 9.<|im_end|>The answer is 4.", "en", 9),
    ("Below is an instruction that describes a task. 7", "en", NONE),
    # --- thousands separators and decimal marks per language ---
    ("The answer is 2,125", "en", 2125),
    ("The answer is 114,200.", "en", 114200),
    ("Total: 1,234,567 people", "en", 1234567),
    ("The answer is 1,234.56", "en", 1234.56),
    ("It costs 0.5 dollars", "en", 0.5),
    ("It costs 12.50 dollars", "en", 12.5),
    ("1.500 liters", "en", 1.5),  # a dot is a decimal point in English
    ("Die Antwort lautet 80.000.", "de", 80000),
    ("Die Antwort lautet 1.234.567", "de", 1234567),
    ("Es kostet 19,50 €.", "de", 19.5),
    ("Die Antwort ist 1,5 Liter.", "de", 1.5),
    ("Die Antwort ist 1.234,56 €", "de", 1234.56),
    ("Die Antwort ist 2,125", "de", 2125),  # comma + 3 digits: thousands (documented choice)
    ("Die Antwort ist 0,125", "de", 0.125),
    ("Die Antwort ist 12.5", "de", 12.5),  # English-style decimal in German output
    ("La réponse est 80 000.", "fr", 80000),
    ("La réponse est 1 234 567,5 €.", "fr", 1234567.5),
    ("La réponse est 19,50 €.", "fr", 19.5),
    ("La respuesta es 80 000.", "es", 80000),
    ("La respuesta es 80.000.", "es", 80000),
    ("La respuesta es 3,75 dólares.", "es", 3.75),
    ("Ответ — 80 000.", "ru", 80000),
    ("Ответ — 2,5 литра.", "ru", 2.5),
    ("Jibu ni 3 473.", "sw", 3473),
    ("คำตอบคือ 3 473", "th", 3473),
    ("答案是 8,051。", "zh", 8051),
    ("答えは8,051です。", "ja", 8051),
    ("উত্তর হল ৩,৪৭৩।", "bn", 3473),
    ("উত্তর হল 1,00,000।", "bn", 100000),  # Indian (lakh) grouping
    ("80 000", "en", 0),  # a plain space does not group in English: the last number is 000
    ("80\u00a0000", "en", 80000),  # a no-break space groups in any language
    ("80\u202f000", "de", 80000),
    ("2024 100 people", "fr", 100),  # first group longer than 3 digits: separate numbers
    ("Il a 12 ans et 200 euros", "fr", 200),
    ("The numbers 1,2,3", "en", 3),  # not a grouping: a list
    ("3,5", "en", 5),  # a comma is never decimal in English: two numbers
    ("3,5", "de", 3.5),
    # synthetic demo languages use their base language's conventions
    ("80.000", "syn-de", 80000),
    ("19,50", "syn-fr", 19.5),
    ("80 000", "syn-ru", 80000),
    ("2,125", "syn-bn", 2125),
    # --- currency and percent signs ---
    ("The answer is $18.", "en", 18),
    ("The answer is $1,234.50.", "en", 1234.5),
    ("Die Antwort lautet 18 €.", "de", 18),
    ("Die Antwort lautet €18,40.", "de", 18.4),
    ("La réponse est 15 %.", "fr", 15),
    ("The answer is 25%.", "en", 25),
    ("答案是 ¥30。", "zh", 30),
    ("答えは￥500です。", "ja", 500),
    ("Ответ: 150 руб.", "ru", 150),
    ("উত্তর হল ৳৫০।", "bn", 50),
    ("The answer is \\$18.", "en", 18),
    ("The answer is 50\\%.", "en", 50),
    # --- \boxed{} ---
    ("So $\\boxed{42}$.", "en", 42),
    ("We get 7 then \\boxed{12} and 5 more steps", "en", 12),
    ("\\boxed{\\text{18 dollars}}", "en", 18),
    ("\\boxed{\\frac{3}{4}}", "en", 0.75),
    ("\\boxed{1{,}000}", "en", 1000),
    ("Die Antwort ist \\boxed{19,5}", "de", 19.5),
    ("答案是 \\boxed{24}。", "zh", 24),
    # --- negative numbers (a dash is not a minus sign) ---
    ("The answer is -5.", "en", -5),
    ("x = \u22123", "en", -3),  # U+2212 minus sign
    ("16-3-4=9", "en", 9),
    ("He lost 5 - 3 = 2", "en", 2),
    ("Ответ — 11.", "ru", 11),
    ("Ответ: -7", "ru", -7),
    ("COVID-19", "en", 19),
    ("La respuesta es -12,5", "es", -12.5),
    # --- full-width digits and symbols ---
    ("答えは１２です。", "ja", 12),
    ("答案是：３６", "zh", 36),
    ("答案是 １，２００", "zh", 1200),  # full-width comma between digits is still grouping here
    ("合計は１２０円", "ja", 120),
    # --- native digits: Bengali, Thai, Devanagari, Telugu, Arabic-Indic ---
    ("উত্তর হল ১৮।", "bn", 18),
    ("মোট ৮১৯০৫৮টি", "bn", 819058),
    ("คำตอบคือ ๑๘", "th", 18),
    ("รวม ๑,๒๐๐ บาท", "th", 1200),
    ("उत्तर ४२ है", "hi", 42),
    ("సమాధానం ౧౨.", "te", 12),
    ("الجواب ٤٢", "ar", 42),
    ("Jibu ni 7.", "sw", 7),
    # --- CJK multipliers ---
    ("答案是3万", "zh", 30000),
    ("答えは1.5万円です", "ja", 15000),
    # --- fractions in a final answer ---
    ("The answer is 3/4.", "en", 0.75),
    ("The answer is 60/2 = 30.", "en", 30),
]

# Weak spots fixed in slam-extract@2 (each gave another value before).
# An answer statement whose sentence goes on to compute the value: its result, not its first operand.
CALCULATION_CASES = [
    ("The answer is 3 times 6, which is 18.", "en", 18),
    ("So the answer is 4 x 5, that is 20 dollars.", "en", 20),
    ("The answer is 12 + 8 which equals 20.", "en", 20),
    ("Die Antwort ist 3 mal 6, also 18.", "de", 18),
    ("La réponse est 4 fois 5, soit 20.", "fr", 20),
    ("La respuesta es 3 por 6, que es 18.", "es", 18),
    ("Ответ равен 4 умножить на 5, то есть 20.", "ru", 20),
    ("Jibu ni 3 mara 6, ambayo ni 18.", "sw", 18),
    ("答案是 3 乘以 6，等于 18。", "zh", 18),
    ("答えは3かける6で18です。", "ja", 18),
    ("คำตอบคือ 3 คูณ 6 เท่ากับ 18", "th", 18),
    ("উত্তর হল 3 গুণ 6, যা 18।", "bn", 18),
    ("Answer: 7 + 5, which is 12.", "en", 12),  # a label too
    # unchanged: no calculation right after the statement's first number, or none finished
    ("The answer is 18 dollars, which is 3 times 6.", "en", 18),
    ("The answer is 3 times 6 for each of 4 friends.", "en", 3),  # no result given: as before
]
# A question restated under a question marker before it is solved: not a run-on.
RESTATED_CASES = [
    (
        "Let me restate it.\nQuestion: Janet has 16 eggs and eats 3. How many are left?\nAnswer: 16 - 3 = 13. "
        "The answer is 13.",
        "en",
        13,
    ),
    (
        "\nQuestion: Janet has 16 eggs.\n16 - 3 = 13. The answer is 13.\nQuestion: Tom has 4. The answer is 4.",
        "en",
        13,
    ),
    ("\nFrage: Janet hat 16 Eier und isst 3.\n16 - 3 = 13. Die Antwort lautet 13.", "de", 13),
    ("\nPregunta: Janet tiene 16 huevos y come 3.\n16 - 3 = 13. La respuesta es 13.", "es", 13),
    (
        "\n问题：珍妮有 16 个鸡蛋，吃了 3 个。\n16 - 3 = 13。答案是 13。\n问题：汤姆有 4 个。答案是 4。",
        "zh",
        13,
    ),
    ("\n問題：卵が16個あり、3個食べます。\n16 - 3 = 13。答えは13です。", "ja", 13),
    ("\nЗадача: у Джанет 16 яиц, она съела 3.\n16 - 3 = 13. Ответ — 13.", "ru", 13),
    ("\nSwali: Janet ana mayai 16 na anakula 3.\n16 - 3 = 13. Jibu ni 13.", "sw", 13),
    ("\nโจทย์: เจเน็ตมีไข่ 16 ฟอง กิน 3 ฟอง\n16 - 3 = 13 คำตอบคือ 13", "th", 13),
    ("\nপ্রশ্ন: জ্যানেটের ১৬টি ডিম, সে ৩টি খায়।\n১৬ - ৩ = ১৩। উত্তর হল ১৩।", "bn", 13),
    # unchanged: a marker after the answer still cuts; template markers always cut
    ("The answer is 18.\nQuestion: Tom has 3 apples. The answer is 3.", "en", 18),
    ("Below is an instruction that describes a task. 7", "en", NONE),
]
CASES += CALCULATION_CASES + RESTATED_CASES


@pytest.mark.parametrize(
    ("text", "lang", "expected"), CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)]
)
def test_extraction_table(text, lang, expected):
    got = extract_answer(text, lang)
    if expected is None:
        assert got is None, f"{text!r} ({lang}) gave {got!r}, expected no answer"
    else:
        assert got is not None and answers_match(got, expected), (
            f"{text!r} ({lang}) gave {got!r}, expected {expected}"
        )


def test_every_language_has_cases():
    langs = {base_language(lang) for _, lang, _ in CASES}
    for lang in ("bn", "th", "sw", "ja", "zh", "de", "fr", "ru", "es", "en", "te"):
        assert lang in langs


@pytest.mark.parametrize("name", sorted(PROMPTS))
def test_template_stop_sequences_cut(name):
    tpl = PROMPTS[name]
    for stop in tpl.stop:
        text = f"So 3 + 4 = 7. The answer is 7.{stop} Next one. The answer is 99."
        assert extract_answer(text, "en", stop=tpl.stop) == 7, stop


def test_custom_stop_sequence():
    assert extract_answer("The answer is 7. END The answer is 8.", "en") == 8
    assert extract_answer("The answer is 7. END The answer is 8.", "en", stop=["END"]) == 7


def test_answers_match_tolerance():
    assert answers_match(7, 7.0)
    assert answers_match(7.00001, 7)
    assert answers_match(-3, -3.0)
    assert not answers_match(7.1, 7)
    assert not answers_match(None, 0)
    assert not answers_match(0, None)
    assert not answers_match(float("nan"), 1)
    assert answers_match(276000.0, 276000)


def test_normalize_digits_and_symbols():
    assert normalize("১২৩ ๔๕๖ ١٢ １２") == "123 456 12 12"
    assert normalize("−5") == "-5"
    assert [n.value for n in find_numbers(normalize("3 − 5 = −2"))] == [3, 5, -2]


def test_gold_answers_of_real_benchmarks(shared_data):
    """The real MGSM and MSVAMP gold answers (``2,125``, ``8.0``) parse to the right numbers."""
    rows = (shared_data / "mgsm" / "mgsm_de.tsv").read_text(encoding="utf-8").splitlines()
    golds = [parse_gold(r.rsplit("\t", 1)[1]) for r in rows]
    assert golds[146] == 2125 and golds[201] == 114200 and golds[230] == 276000 and golds[249] == 5600
    assert all(g is not None and g == int(g) for g in golds)
    first = json.loads(
        (shared_data / "msvamp" / "test_Bengali.json").read_text(encoding="utf-8").splitlines()[0]
    )
    assert parse_gold(first["response"]) == float(first["response"])


def test_exemplar_answers_in_every_language(shared_data):
    """MGSM's own chain-of-thought exemplars, in 11 languages, extract to their known answers."""
    data = json.loads((shared_data / "mgsm" / "mgsm_exemplars.json").read_text(encoding="utf-8"))
    answers = data["EXEMPLAR_NUMBER_ANSWERS"]
    for lang, exemplars in data["MGSM_EXEMPLARS"].items():
        for i, key in enumerate(sorted(exemplars, key=int)):
            got = extract_answer(exemplars[key]["a"], lang)
            assert answers_match(got, answers[i]), (lang, key, got, answers[i])
            # a run-on continuation with the next exemplar's question must not change it
            run_on = exemplars[key]["a"] + "\n" + exemplars[str((int(key) % 8) + 1)]["q"] + " 999"
            assert answers_match(extract_answer(run_on, lang), answers[i]), (lang, key, "run-on")


# --- every rule in every language, generated from each language's own phrasing ---
# say: the native final-answer sentence; q: the native few-shot question prefix (run-on marker);
# dec / thou: 12.5 and 12500 as the language writes them; native: its own digits, if any.
LANGS = {
    "en": dict(say="The answer is {}.", q="Question:", dec="12.5", thou="12,500"),
    "de": dict(say="Die Antwort lautet {}.", q="Frage:", dec="12,5", thou="12.500"),
    "fr": dict(say="La réponse est {}.", q="Question :", dec="12,5", thou="12 500"),
    "es": dict(say="La respuesta es {}.", q="Pregunta:", dec="12,5", thou="12.500"),
    "ru": dict(say="Ответ — {}.", q="Задача:", dec="12,5", thou="12 500"),
    "zh": dict(say="答案是 {}。", q="问题：", dec="12.5", thou="12,500"),
    "ja": dict(say="答えは{}です。", q="問題：", dec="12.5", thou="12,500"),
    "sw": dict(say="Jibu ni {}.", q="Swali:", dec="12.5", thou="12,500"),
    "th": dict(say="คำตอบคือ {}", q="โจทย์:", dec="12.5", thou="12,500", native="๐๑๒๓๔๕๖๗๘๙"),
    "bn": dict(say="উত্তর হল {}।", q="প্রশ্ন:", dec="12.5", thou="12,500", native="০১২৩৪৫৬৭৮৯"),
    "te": dict(say="సమాధానం {}.", q="ప్రశ్న:", dec="12.5", thou="12,500", native="౦౧౨౩౪౫౬౭౮౯"),
}


def _native(digits: str, table: str) -> str:
    return "".join(table[int(c)] if c.isdigit() else c for c in digits)


def _rule_cases():
    for lang, d in LANGS.items():
        say = d["say"].format
        yield lang, "statement", "3 + 4 = 7. " + say(7), 7
        yield lang, "last statement wins", say(5) + " " + say(7), 7
        yield lang, "statement beats a later number", say(7) + " (3 + 4)", 7
        yield lang, "else the last number", "16 - 3 - 4 = 9", 9
        yield lang, "no number is None", say("x"), None
        yield lang, "run-on cut", say(7) + "\n" + d["q"] + " 2 + 2? " + say(4), 7
        yield lang, "decimal", say(d["dec"]), 12.5
        yield lang, "thousands", say(d["thou"]), 12500
        yield lang, "English-style both marks", say("12,500.5"), 12500.5
        yield lang, "currency", say("$18"), 18
        yield lang, "percent", say("18%"), 18
        yield lang, "boxed", say("\\boxed{42}") + " 3", 42
        yield lang, "boxed beats a later number", "7 \\boxed{42} 3", 42
        yield lang, "negative", say("-5"), -5
        yield lang, "full-width digits", say("４２"), 42
        yield lang, "syn- code", say(d["thou"]), 12500
        if "native" in d:
            yield lang, "native digits", say(_native("42", d["native"])), 42
            yield lang, "native digits with thousands", say(_native("12,500", d["native"])), 12500


RULE_CASES = list(_rule_cases())


@pytest.mark.parametrize(
    ("lang", "rule", "text", "expected"), RULE_CASES, ids=[f"{c[0]}-{c[1]}" for c in RULE_CASES]
)
def test_every_rule_in_every_language(lang, rule, text, expected):
    code = f"syn-{lang}" if rule == "syn- code" else lang
    got = extract_answer(text, code)
    if expected is None:
        assert got is None, f"{rule}: {text!r} gave {got!r}"
    else:
        assert got is not None and answers_match(got, expected), f"{rule}: {text!r} ({code}) gave {got!r}"


# --- the published protocol (QAlign / MathOctopus extract_last_num) ---
LAST_NUMBER_CASES = [
    ("Janet sells 16 - 3 - 4 = 9 eggs, 9 * 2 = $18. The answer is: 18", 18),
    ("He made a profit of $70,000.", 70000),
    ("The total is 1,234,567 people.", 1234567),
    ("List: 1,2,3", 3),  # "1,2,3" -> "12,3": matches do not overlap
    ("The price is 3.50 dollars.", 3.5),
    ("The answer is 18.", 18),  # a trailing dot is not part of the number
    ("The answer is .5", 5),  # nor a leading one
    ("The temperature is -5 degrees.", 5),  # no sign
    ("উত্তর হল ১৮", 18),  # any script's digits
    ("คำตอบคือ ๑๘", 18),
    ("答案是１８。", 18),
    ("Die Antwort ist 1.234.567", 567),  # European grouping breaks
    ("La respuesta es 12,5", 125),
    ("The answer is 18. Question 2: Tom has 7 apples", 7),  # run-on text counts
    ("I cannot solve this problem.", None),
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), LAST_NUMBER_CASES)
def test_last_number(text, expected):
    assert last_number(text) == expected


def test_last_number_verdict():
    assert last_number_correct("The answer is 2,125", "2,125") and last_number_correct(
        "The answer is 8", "8.0"
    )
    assert last_number_correct("The answer is 3.5004", 3.5)  # |gold - pred| < 1e-3, as published
    assert not last_number_correct("The answer is 3.502", 3.5)
    assert not last_number_correct("I do not know.", 18) and not last_number_correct(None, 18)
    # the published function reads "no number" as 0.0: right for a gold of 0; ours: wrong
    assert not last_number_correct("I do not know.", 0)
    assert peer_gold("2,125") == 2125 and peer_gold(8.0) == 8 and peer_gold(-3) == 3


def test_generation_cut_keeps_a_restated_question():
    stop = ["\nQuestion:", "### Instruction"]
    text = "\nQuestion: Janet has 16 eggs.\n16 - 3 = 13.\nQuestion: next one"
    assert cut_at_stop(text, stop) == "\nQuestion: Janet has 16 eggs.\n16 - 3 = 13."
    assert cut_at_stop("\nQuestion: Janet has eggs.", stop) == "\nQuestion: Janet has eggs."
    assert cut_at_stop("13.\n### Instruction: x", stop) == "13.\n"
