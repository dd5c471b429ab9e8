"""Language codes (ISO 639-1) and names used across benchmarks and prompts."""

from __future__ import annotations

from slam_align.errors import SlamError

# The paper's 10 languages, in the order its tables use (low-resource first).
PAPER_LANGS: tuple[str, ...] = ("bn", "th", "sw", "ja", "zh", "de", "fr", "ru", "es", "en")

LANGUAGE_NAMES: dict[str, str] = {
    "bn": "Bengali",
    "th": "Thai",
    "sw": "Swahili",
    "ja": "Japanese",
    "zh": "Chinese",
    "de": "German",
    "fr": "French",
    "ru": "Russian",
    "es": "Spanish",
    "en": "English",
    "te": "Telugu",
    # the other languages of X-CSQA (16: en zh de es fr it ja nl pl pt ru ar vi hi sw ur)
    "it": "Italian",
    "nl": "Dutch",
    "pl": "Polish",
    "pt": "Portuguese",
    "ar": "Arabic",
    "vi": "Vietnamese",
    "hi": "Hindi",
    "ur": "Urdu",
}


def language_name(code: str) -> str:
    """English name of an ISO 639-1 code (synthetic ``syn-xx`` codes map to 'Synthetic <name>')."""
    if code.startswith("syn-") and code[4:] in LANGUAGE_NAMES:
        return f"Synthetic {LANGUAGE_NAMES[code[4:]]}"
    try:
        return LANGUAGE_NAMES[code]
    except KeyError:
        raise SlamError(
            f"unknown language code '{code}'; expected ISO 639-1, one of: {', '.join(LANGUAGE_NAMES)}"
        ) from None


def parse_langs(value: str | list[str] | None, allowed: tuple[str, ...] | None = None) -> list[str]:
    """'bn,th,en' or a list -> checked list of codes (order kept, duplicates dropped). 'all' = allowed."""
    if value is None or value == "all" or value == ["all"]:
        return list(allowed or PAPER_LANGS)
    items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    if not items:
        raise SlamError("empty language list; expected codes like 'bn,th,sw,en'")
    out: list[str] = []
    for code in items:
        language_name(code)  # raises on unknown codes
        if allowed is not None and code not in allowed:
            raise SlamError(f"language '{code}' is not available here; expected one of: {', '.join(allowed)}")
        if code not in out:
            out.append(code)
    return out
