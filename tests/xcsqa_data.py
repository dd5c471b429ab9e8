"""Small X-CSQA files in the exact shapes the loaders read, written by hand (no X-CSQA file can be
downloaded here).

Question ``be1920f7ba5454ad`` in English is the one real row quoted on the hub card (datasets
``xcsr`` README); the other two questions and all translations are written for these tests. The
three questions are parallel by id in all 16 languages: two in ``dev.jsonl`` (validation, labelled)
and one in ``test.jsonl`` (labels hidden, as distributed).

Shapes (as published by each source):

- distributed JSONL, ``X-CSQA/<lang>/{dev,test}.jsonl`` (Japanese: ``jap``):
  ``{"id", "lang", "question": {"stem", "choices": [{"label", "text"}, ...]}, "answerKey"}``;
- the hub's ``xcsr`` config ``X-CSQA-<lang>`` as ``datasets`` returns a row: the same, with
  ``question.choices`` a dict of lists, and ``answerKey`` ``""`` in the test split;
- CommonsenseQA on the hub (``tau/commonsense_qa``): ``{id, question, question_concept,
  choices: {label, text}, answerKey}``;
- FLORES-200 as distributed (``flores200_dataset/dev/<code>.dev``, one sentence per line) and
  as the hub's ``openlanguagedata/flores_plus`` rows (``id``, ``iso_639_3``, ``iso_15924``,
  ``glottocode``, ``text``, ...).
"""

from __future__ import annotations

import json
from pathlib import Path

LANGS = ("en", "zh", "de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "ar", "vi", "hi", "sw", "ur")
LABELS = ("A", "B", "C", "D", "E")
IDS = ("be1920f7ba5454ad", "a3c5d1e2f4b60789", "0f1e2d3c4b5a6978")
ANSWERS = ("D", "A", "C")  # the third question is in the test split: its key is hidden

# lang -> three (stem, five choices) in the order of IDS
QUESTIONS: dict[str, list[tuple[str, list[str]]]] = {
    "en": [
        ("What will happen to your knowledge with more learning?",
         ["headaches", "bigger brain", "education", "growth", "knowing more"]),
        ("Where would you put a plate after washing it?", ["cupboard", "table", "restaurant", "sink", "floor"]),
        ("What do people use to cut paper?", ["spoon", "pillow", "scissors", "water", "shoe"]),
    ],
    "zh": [
        ("随着学习的增多，你的知识会发生什么变化？", ["头痛", "更大的大脑", "教育", "增长", "知道得更多"]),
        ("洗完盘子后你会把它放在哪里？", ["橱柜", "桌子", "餐厅", "水槽", "地板"]),
        ("人们用什么来剪纸？", ["勺子", "枕头", "剪刀", "水", "鞋子"]),
    ],
    "de": [
        ("Was passiert mit deinem Wissen, wenn du mehr lernst?",
         ["Kopfschmerzen", "größeres Gehirn", "Bildung", "Wachstum", "mehr wissen"]),
        ("Wohin würdest du einen Teller stellen, nachdem du ihn gespült hast?",
         ["Schrank", "Tisch", "Restaurant", "Spüle", "Boden"]),
        ("Womit schneiden Menschen Papier?", ["Löffel", "Kissen", "Schere", "Wasser", "Schuh"]),
    ],
    "es": [
        ("¿Qué le pasará a tu conocimiento si aprendes más?",
         ["dolores de cabeza", "cerebro más grande", "educación", "crecimiento", "saber más"]),
        ("¿Dónde pondrías un plato después de lavarlo?", ["armario", "mesa", "restaurante", "fregadero", "suelo"]),
        ("¿Qué usa la gente para cortar papel?", ["cuchara", "almohada", "tijeras", "agua", "zapato"]),
    ],
    "fr": [
        ("Qu'arrivera-t-il à vos connaissances si vous apprenez davantage ?",
         ["maux de tête", "cerveau plus gros", "éducation", "croissance", "en savoir plus"]),
        ("Où mettriez-vous une assiette après l'avoir lavée ?", ["placard", "table", "restaurant", "évier", "sol"]),
        ("Qu'utilisent les gens pour couper du papier ?", ["cuillère", "oreiller", "ciseaux", "eau", "chaussure"]),
    ],
    "it": [
        ("Cosa succederà alla tua conoscenza con più apprendimento?",
         ["mal di testa", "cervello più grande", "istruzione", "crescita", "sapere di più"]),
        ("Dove metteresti un piatto dopo averlo lavato?",
         ["credenza", "tavolo", "ristorante", "lavandino", "pavimento"]),
        ("Cosa usano le persone per tagliare la carta?", ["cucchiaio", "cuscino", "forbici", "acqua", "scarpa"]),
    ],
    "ja": [
        ("もっと学ぶと、あなたの知識はどうなりますか？", ["頭痛", "より大きな脳", "教育", "成長", "もっと知ること"]),
        ("皿を洗った後、どこに置きますか？", ["食器棚", "テーブル", "レストラン", "流し台", "床"]),
        ("人々は紙を切るのに何を使いますか？", ["スプーン", "枕", "はさみ", "水", "靴"]),
    ],
    "nl": [
        ("Wat gebeurt er met je kennis als je meer leert?",
         ["hoofdpijn", "groter brein", "onderwijs", "groei", "meer weten"]),
        ("Waar zou je een bord neerzetten nadat je het hebt afgewassen?",
         ["kast", "tafel", "restaurant", "gootsteen", "vloer"]),
        ("Wat gebruiken mensen om papier te knippen?", ["lepel", "kussen", "schaar", "water", "schoen"]),
    ],
    "pl": [
        ("Co stanie się z twoją wiedzą, gdy będziesz się więcej uczyć?",
         ["bóle głowy", "większy mózg", "edukacja", "wzrost", "wiedzieć więcej"]),
        ("Gdzie odłożysz talerz po umyciu go?", ["szafka", "stół", "restauracja", "zlew", "podłoga"]),
        ("Czego ludzie używają do cięcia papieru?", ["łyżka", "poduszka", "nożyczki", "woda", "but"]),
    ],
    "pt": [
        ("O que acontecerá com o seu conhecimento com mais aprendizado?",
         ["dores de cabeça", "cérebro maior", "educação", "crescimento", "saber mais"]),
        ("Onde você colocaria um prato depois de lavá-lo?", ["armário", "mesa", "restaurante", "pia", "chão"]),
        ("O que as pessoas usam para cortar papel?", ["colher", "travesseiro", "tesoura", "água", "sapato"]),
    ],
    "ru": [
        ("Что произойдёт с вашими знаниями, если вы будете больше учиться?",
         ["головные боли", "больший мозг", "образование", "рост", "знать больше"]),
        ("Куда вы поставите тарелку после того, как вымоете её?", ["шкаф", "стол", "ресторан", "раковина", "пол"]),
        ("Чем люди режут бумагу?", ["ложка", "подушка", "ножницы", "вода", "ботинок"]),
    ],
    "ar": [
        ("ماذا سيحدث لمعرفتك مع المزيد من التعلم؟", ["صداع", "دماغ أكبر", "تعليم", "نمو", "معرفة المزيد"]),
        ("أين تضع الطبق بعد غسله؟", ["خزانة", "طاولة", "مطعم", "حوض", "أرضية"]),
        ("ماذا يستخدم الناس لقص الورق؟", ["ملعقة", "وسادة", "مقص", "ماء", "حذاء"]),
    ],
    "vi": [
        ("Điều gì sẽ xảy ra với kiến thức của bạn khi học nhiều hơn?",
         ["đau đầu", "bộ não lớn hơn", "giáo dục", "sự phát triển", "biết nhiều hơn"]),
        ("Bạn sẽ đặt cái đĩa ở đâu sau khi rửa nó?", ["tủ chén", "bàn", "nhà hàng", "bồn rửa", "sàn nhà"]),
        ("Mọi người dùng gì để cắt giấy?", ["cái thìa", "cái gối", "cái kéo", "nước", "giày"]),
    ],
    "hi": [
        ("अधिक सीखने से आपके ज्ञान का क्या होगा?", ["सिरदर्द", "बड़ा दिमाग", "शिक्षा", "विकास", "अधिक जानना"]),
        ("धोने के बाद आप प्लेट कहाँ रखेंगे?", ["अलमारी", "मेज़", "रेस्तरां", "सिंक", "फ़र्श"]),
        ("लोग कागज़ काटने के लिए क्या इस्तेमाल करते हैं?", ["चम्मच", "तकिया", "कैंची", "पानी", "जूता"]),
    ],
    "sw": [
        ("Nini kitatokea kwa maarifa yako ukijifunza zaidi?",
         ["maumivu ya kichwa", "ubongo mkubwa zaidi", "elimu", "ukuaji", "kujua zaidi"]),
        ("Ungeweka sahani wapi baada ya kuiosha?", ["kabati", "meza", "mgahawa", "sinki", "sakafu"]),
        ("Watu hutumia nini kukata karatasi?", ["kijiko", "mto", "mkasi", "maji", "kiatu"]),
    ],
    "ur": [
        ("زیادہ سیکھنے سے آپ کے علم کا کیا ہوگا؟", ["سر درد", "بڑا دماغ", "تعلیم", "ترقی", "زیادہ جاننا"]),
        ("برتن دھونے کے بعد آپ پلیٹ کہاں رکھیں گے؟", ["الماری", "میز", "ریستوران", "سنک", "فرش"]),
        ("لوگ کاغذ کاٹنے کے لیے کیا استعمال کرتے ہیں؟", ["چمچ", "تکیہ", "قینچی", "پانی", "جوتا"]),
    ],
}  # fmt: skip

FOLDER = {"ja": "jap"}  # XCSR's folder / config name for Japanese


def choices_of(lang: str, q: int = 0) -> list[tuple[str, str]]:
    return list(zip(LABELS, QUESTIONS[lang][q][1]))


def jsonl_row(lang: str, q: int, hidden: bool = False) -> dict:
    """A row of the distributed ``X-CSQA/<lang>/{dev,test}.jsonl``."""
    stem, texts = QUESTIONS[lang][q]
    row = {
        "id": IDS[q],
        "lang": FOLDER.get(lang, lang),
        "question": {"stem": stem, "choices": [{"label": lab, "text": t} for lab, t in zip(LABELS, texts)]},
    }
    if not hidden:  # the distributed test.jsonl carries no answerKey
        row["answerKey"] = ANSWERS[q]
    return row


def hub_row(lang: str, q: int, split: str) -> dict:
    """A row of the hub's ``xcsr`` config ``X-CSQA-<lang>`` as ``datasets`` returns it."""
    stem, texts = QUESTIONS[lang][q]
    return {
        "id": IDS[q],
        "lang": FOLDER.get(lang, lang),
        "question": {"stem": stem, "choices": {"label": list(LABELS), "text": list(texts)}},
        "answerKey": "" if split == "test" else ANSWERS[q],
    }


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_distributed(root: Path, langs=LANGS, dev=(0, 1), test=(2,)) -> Path:
    """``root/X-CSQA/<lang>/{dev,test}.jsonl`` (the XCSR zip's layout); returns ``root``."""
    for lang in langs:
        folder = root / "X-CSQA" / FOLDER.get(lang, lang)
        write_jsonl(folder / "dev.jsonl", [jsonl_row(lang, q) for q in dev])
        write_jsonl(folder / "test.jsonl", [jsonl_row(lang, q, hidden=True) for q in test])
    return root


def write_hub_shaped(root: Path, langs=LANGS) -> dict[tuple[str, str], str]:
    """One file per (config, split) holding hub-shaped rows: {(lang, split): path}."""
    files = {}
    for lang in langs:
        for split, qs in (("validation", (0, 1)), ("test", (2,))):
            path = root / f"X-CSQA-{FOLDER.get(lang, lang)}-{split}.jsonl"
            files[(lang, split)] = str(write_jsonl(path, [hub_row(lang, q, split) for q in qs]))
    return files


# --- training sources --------------------------------------------------------------------

CSQA_TRAIN = [  # CommonsenseQA train rows as the hub returns them (written for these tests)
    ("q-train-1", "Where do you keep milk cold?", "cold", ["oven", "fridge", "desk", "garden", "car"], "B"),
    ("q-train-2", "What do you use to write on paper?", "write", ["pen", "fork", "cup", "lamp", "rope"], "A"),
    ("q-train-3", "What falls from clouds when it rains?", "rain", ["sand", "snowman", "water", "bread", "ink"], "C"),
    # the English validation question itself: decontamination must remove it
    ("q-train-4", QUESTIONS["en"][0][0], "knowledge", QUESTIONS["en"][0][1], "D"),
]  # fmt: skip


def csqa_hub_rows() -> list[dict]:
    return [
        {
            "id": i,
            "question": q,
            "question_concept": c,
            "choices": {"label": list(LABELS), "text": list(texts)},
            "answerKey": a,
        }
        for i, q, c, texts, a in CSQA_TRAIN
    ]


# FLORES-200 codes (facebook/flores) and the FLORES+ one that differs (openlanguagedata/flores_plus)
FLORES_SENTENCES = {
    "eng_Latn": ["The cat sleeps on the warm roof.", "Rain fell on the city all night."],
    "deu_Latn": ["Die Katze schläft auf dem warmen Dach.", "Die ganze Nacht fiel Regen auf die Stadt."],
    "cmn_Hans": ["猫在温暖的屋顶上睡觉。", "整夜雨都落在城市上。"],
    "jpn_Jpan": ["猫は暖かい屋根の上で眠ります。", "一晩中、街に雨が降った。"],
    "swh_Latn": ["Paka analala juu ya paa lenye joto.", "Mvua ilinyesha mjini usiku kucha."],
}


def write_flores_distributed(root: Path, split: str = "dev") -> Path:
    """``root/flores200_dataset/<split>/<code>.<split>``, one sentence per line (Chinese as zho_Hans)."""
    folder = root / "flores200_dataset" / split
    folder.mkdir(parents=True, exist_ok=True)
    for code, sentences in FLORES_SENTENCES.items():
        name = "zho_Hans" if code == "cmn_Hans" else code
        (folder / f"{name}.{split}").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    return root / "flores200_dataset"


def flores_plus_rows(code: str) -> list[dict]:
    lang, script = code.split("_")
    return [
        {"id": i + 1, "iso_639_3": lang, "iso_15924": script, "glottocode": "x", "text": s,
         "url": "https://example.org", "domain": "wikinews", "topic": "t", "has_image": 0, "has_hyperlink": 0,
         "last_updated": "1.0"}
        for i, s in enumerate(FLORES_SENTENCES[code])
    ]  # fmt: skip
