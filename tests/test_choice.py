"""Choice extraction (a hand-written case table per X-CSQA language), SLAM's published
"The answer is (X)." rule, and the answer-type table behind score_row, metrics and tables."""

from __future__ import annotations

import random
import re

import pytest
import xcsqa_data as X

from slam_align.errors import SlamError
from slam_align.evaluate.answers import ANSWER_TYPES, answer_type_of, scoring_record
from slam_align.evaluate.choice import answer_is_choice, answer_is_correct, extract_choice
from slam_align.evaluate.report import compute_metrics, markdown_table
from slam_align.evaluate.score import format_scores, score_predictions, score_row

# lang -> (statement with a label, label line, statement with a choice's text, "I don't know")
NATIVE = {
    "en": ("The answer is {L}.", "Answer: {L}", "The answer is {T}.", "I don't know."),
    "zh": ("答案是 {L}", "答案：{L}", "答案是{T}。", "我不知道。"),
    "de": ("Die Antwort ist {L}.", "Antwort: {L}", "Die Antwort lautet {T}.", "Ich weiß es nicht."),
    "es": ("La respuesta es {L}.", "Respuesta: {L}", "La respuesta correcta es {T}.", "No lo sé."),
    "fr": ("La réponse est {L}.", "Réponse : {L}", "La bonne réponse est {T}.", "Je ne sais pas."),
    "it": ("La risposta è {L}.", "Risposta: {L}", "La risposta corretta è {T}.", "Non lo so."),
    "ja": ("答えは {L} です。", "答え：{L}", "正解は{T}です。", "わかりません。"),
    "nl": ("Het antwoord is {L}.", "Antwoord: {L}", "Het antwoord is {T}.", "Ik weet het niet."),
    "pl": ("Odpowiedź to {L}.", "Odpowiedź: {L}", "Prawidłowa odpowiedź to {T}.", "Nie wiem."),
    "pt": ("A resposta é {L}.", "Resposta: {L}", "A resposta correta é {T}.", "Não sei."),
    "ru": ("Правильный ответ — {L}.", "Ответ: {L}", "Ответ — {T}.", "Я не знаю."),
    "ar": ("الإجابة هي {L}", "الإجابة: {L}", "الإجابة الصحيحة هي {T}", "لا أعرف."),
    "vi": ("Câu trả lời là {L}.", "Đáp án: {L}", "Đáp án đúng là {T}.", "Tôi không biết."),
    "hi": ("उत्तर {L} है।", "उत्तर: {L}", "सही उत्तर {T} है।", "मुझे नहीं पता।"),
    "sw": ("Jibu ni {L}.", "Jibu: {L}", "Jibu sahihi ni {T}.", "Sijui."),
    "ur": ("جواب {L} ہے۔", "جواب: {L}", "صحیح جواب {T} ہے۔", "مجھے نہیں معلوم۔"),
}


def _listing(lang: str, q: int) -> str:
    return " ".join(f"({a}) {t}" for a, t in zip(X.LABELS, X.QUESTIONS[lang][q][1]))


def _cases(lang: str) -> list[tuple[str, str | None, str]]:
    """(output, expected label, what) for question be1920f7ba5454ad (gold D) in ``lang``."""
    stmt, label, stmt_text, unknown = NATIVE[lang]
    texts = dict(zip(X.LABELS, X.QUESTIONS[lang][0][1]))
    paren = "（Ｄ）" if lang in ("zh", "ja") else "(D)"  # full-width brackets and letter fold to (D)
    next_question = f"{X.QUESTIONS[lang][1][0]}\nAnswer Choices: {_listing(lang, 1)}\nThe answer is (A)."
    return [
        ("The answer is (D).", "D", "SLAM's own format"),
        (stmt.format(L="D"), "D", "native statement, bare letter"),
        (label.format(L="D"), "D", "native answer label"),
        ("D", "D", "a bare letter"),
        (paren, "D", "a bracketed letter"),
        (f"**{texts['D']}**", "D", "the choice's text alone"),
        (stmt_text.format(T=texts["B"]), "B", "native statement, the choice's text"),
        (f"{stmt.format(L='D')}\n\nQuestion: {next_question}", "D", "run-on: an invented next question"),
        (f"{label.format(L='D')}\n\n### Instruction:\n{next_question}", "D", "run-on: a next instruction"),
        (
            f"Let me restate it.\nQuestion: {X.QUESTIONS[lang][0][0]}\nAnswer Choices: {_listing(lang, 0)}\n"
            + stmt.format(L="D"),
            "D",
            "the question restated before the answer",
        ),
        (unknown, None, "no answer"),
        (_listing(lang, 0), None, "every choice listed: no answer"),
    ]


TABLE = [(lang, *case) for lang in X.LANGS for case in _cases(lang)]


def test_the_case_table_covers_every_language():
    per_lang = {lang: sum(row[0] == lang for row in TABLE) for lang in X.LANGS}
    assert set(per_lang) == set(NATIVE) and len(per_lang) == 16 and min(per_lang.values()) >= 12
    assert len(TABLE) == 192


@pytest.mark.parametrize("lang, text, expected, what", TABLE)
def test_choice_extraction_table(lang, text, expected, what):
    assert extract_choice(text, X.choices_of(lang, 0), lang) == expected, (what, text)


# The same question, English choices: what the rules decide in the hard cases.
ENGLISH = [
    ("The answer is (B) bigger brain.", "B"),
    ("The answer is B", "B"),
    ("b", "B"),  # the whole output is a letter: any case
    ("The answer is b", None),  # a bare lower-case letter after a statement is not a label...
    ("The answer is (b).", "B"),  # ...in brackets it is
    ("A bigger brain would result.", "B"),  # the article "A" is not label A
    ("bigger brain", "B"),  # "brain" alone would be no choice; the longer text wins over none
    ("Knowledge grows: growth.", "D"),
    ("I would choose D because knowledge grows.", "D"),
    ("The answer is not (A), the answer is (D).", "D"),
    ("The answer is not (A).", None),  # a rejected choice is never the answer
    ("A: The question asks what learning does. It leads to growth.", "D"),  # "A:" is a Q/A prefix here
    ("B. Because learning makes the brain bigger.", "B"),
    ("(B) because the brain grows", "B"),
    ("Either headaches or growth.", None),  # two options named: no answer
    ("The answer is (F).", None),  # not a label of this question
    ("The answer is:\n(D) growth", "D"),
    ("", None),
    (None, None),
    ("Answer: D\nHuman: next question? Answer: A", "D"),  # cut at the template's next turn
]


@pytest.mark.parametrize("text, expected", ENGLISH)
def test_english_decisions(text, expected):
    assert extract_choice(text, X.choices_of("en", 0), "en") == expected


def test_languages_are_not_tied_to_the_question():
    """A model often answers in English whatever the question's language (SLAM's do)."""
    assert extract_choice("Die Antwort ist (C).", X.choices_of("ja", 0), "ja") == "C"
    assert extract_choice("The answer is 成長.", X.choices_of("ja", 0), "ja") == "D"
    assert extract_choice("答案是 (E)", X.choices_of("sw", 0), "sw") == "E"


# --- the published protocol: SLAM's X-CSQA evaluator -----------------------------------------

_PUBLISHED = re.compile(r"The answer is \((.)\)\.")


def _published(text: str, gold: str) -> bool:
    """eval2statistic.py:133-170 restated directly: first match, no match -> 'F', right iff == gold."""
    m = _PUBLISHED.search(text.strip("\n").strip())
    pred = m.group(1) if m else "F"
    return pred in "ABCDE" and pred == gold


def test_answer_is_rule():
    assert answer_is_choice("... so the answer is B. The answer is (B).") == "B"
    assert answer_is_choice("The answer is (C). The answer is (B).") == "C"  # the first, not the last
    assert answer_is_choice("The answer is B.") is None and answer_is_choice("The answer is (B)") is None
    assert answer_is_choice("The answer is (F).") is None and answer_is_choice("the answer is (B).") is None
    assert answer_is_correct("The answer is (B).", "The answer is (B).")  # gold as SLAM's data writes it
    assert answer_is_correct("x The answer is (D).", "D") and not answer_is_correct("The answer is (D).", "B")
    assert not answer_is_correct(None, "D") and not answer_is_correct("The answer is (D).", "")


def test_answer_is_rule_equals_the_published_code_on_random_outputs():
    rng = random.Random(0)
    pieces = [
        "The answer is (",
        "The answer is ",
        ")",
        ").",
        ".",
        "(",
        "A",
        "B",
        "D",
        "F",
        "x",
        " ",
        "\n",
        "é",
    ]
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        gold = rng.choice("ABCDE")
        assert answer_is_correct(text, gold) == _published(text, gold), (text, gold)


# --- the answer-type table behind score_row, metrics and tables ------------------------------


def _row(lang="de", prediction="Die Antwort ist D.", **kw):
    return {
        "benchmark": "xcsqa", "lang": lang, "id": f"xcsqa-{lang}-0", "index": 0,
        "question": X.QUESTIONS[lang][0][0], "choices": dict(X.choices_of(lang, 0)),
        "prediction": prediction, "answer": "D", "answer_type": "choice", **kw,
    }  # fmt: skip


def test_score_row_of_a_choice_row():
    r = score_row(_row())
    assert (r["extracted"], r["correct"], r["extracted_last_number"], r["correct_last_number"]) == (
        "D",
        True,
        None,
        False,
    )
    r = score_row(_row(prediction="Wachstum. The answer is (D)."))
    assert (r["extracted"], r["correct"], r["extracted_last_number"], r["correct_last_number"]) == (
        "D",
        True,
        "D",
        True,
    )
    # a row of another tool without answer_type: its benchmark's definition says choice
    plain = {k: v for k, v in _row().items() if k != "answer_type"}
    assert answer_type_of(plain).name == "choice" and score_row(plain)["correct"]
    assert answer_type_of({"lang": "en", "answer": 3}).name == "number"  # rows of old runs


@pytest.mark.parametrize(
    "change, message",
    [
        ({"choices": None}, r"line 3: missing field 'choices'"),
        ({"choices": {"A": "x"}}, r"line 3: field 'choices': expected at least two choices"),
        ({"answer": "F"}, r"line 3: field 'answer': not a choice label: 'F'; expected one of A, B, C, D, E"),
        ({"answer_type": "text"}, r"line 3: field 'answer_type' is 'text'; expected one of: number, choice"),
    ],
)
def test_bad_choice_rows_are_one_line(change, message):
    with pytest.raises(SlamError, match=message):
        score_row({**_row(), **change}, where="preds.jsonl: line 3")


def test_metrics_and_tables_of_a_mixed_run():
    rows = [
        {"benchmark": "mgsm", "lang": "de", "index": 0, "prediction": "Die Antwort ist 18.", "answer": 18},
        {"benchmark": "mgsm", "lang": "en", "index": 0, "prediction": "no idea", "answer": 18},
        _row("de", "Die Antwort ist D."),
        _row("en", "The answer is (D)."),
        _row("ja", "わかりません。"),
    ]
    scored, metrics = score_predictions(rows, n_boot=50)
    assert [r["correct"] for r in scored] == [True, False, True, True, False]
    x = metrics["benchmarks"]["xcsqa"]
    assert x["answer_type"] == "choice" and "answer_type" not in metrics["benchmarks"]["mgsm"]
    assert x["accuracy"] == {"ja": 0.0, "de": 1.0, "en": 1.0} and x["accuracy_last_number"]["en"] == 1.0
    assert x["accuracy_last_number"]["de"] == 0.0 and x["no_answer_rate"] == pytest.approx(1 / 3)
    assert list(x["accuracy"]) == ["ja", "de", "en"]  # the paper's order, English last
    assert metrics["scoring"]["accuracy"]["extractor"] == "slam-extract@2"
    assert set(metrics["scoring"]["by_answer_type"]) == {"number", "choice"}
    assert scoring_record(["number", "number"]) == ANSWER_TYPES["number"].scoring
    assert scoring_record(["choice"])["accuracy_last_number"]["follows"].startswith("fmm170/SLAM")
    table = markdown_table(metrics)
    assert "| mgsm (last number) |" in table and "| xcsqa (published) |" in table
    assert "The answer is (X)." in table
    text = format_scores(metrics)
    assert "published 100.0%" in text and "last number" in text


def test_languages_beyond_the_paper_sort_before_english():
    rows = [_row(lang) for lang in ("en", "ur", "de", "it", "sw")]
    metrics = compute_metrics([score_row(r) for r in rows], n_boot=0)
    assert list(metrics["accuracy"]) == ["sw", "de", "it", "ur", "en"]
