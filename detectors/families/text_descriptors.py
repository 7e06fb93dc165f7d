"""Cheap descriptors of a text, no model: its script and language, its format (JSON, code,
markdown, prose), whether it asks a question, its length and its shares of non-ASCII
characters, digits and punctuation. Pure (``re`` and ``json``), about 20 microseconds a text.

The text drift check compares their distributions in a window's sampled texts with the
reference's, as drift features; they say *how* texts changed when the topic test says *that*
they did.

>>> describe("¿Dónde está mi pedido? Lo pedí hace una semana y no ha llegado.", 62).categorical
('latin', 'es', 'prose', 'question')
>>> describe('{"status": "shipped", "eta_days": 3}', 36).categorical
('latin', 'latin', 'json', 'statement')
>>> describe("Ваш заказ отправлен, он прибудет через три дня.", 47).categorical
('cyrillic', 'cyrillic', 'prose', 'statement')
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

NUMERIC_DESCRIPTORS: Final = ("length", "non_ascii", "digits", "punctuation")
"""``length``: characters of the whole text (before it was cut for the sample); the others are
shares of the sampled text's characters."""
CATEGORICAL_DESCRIPTORS: Final = ("script", "language", "format", "question")

SCRIPTS: Final = (
    ("latin", r"A-Za-z\u00c0-\u024f\u1e00-\u1eff"),
    ("cyrillic", r"\u0400-\u052f"),
    ("greek", r"\u0370-\u03ff"),
    ("arabic", r"\u0600-\u06ff\u0750-\u077f"),
    ("hebrew", r"\u0590-\u05ff"),
    ("devanagari", r"\u0900-\u097f"),
    ("thai", r"\u0e00-\u0e7f"),
    ("hangul", r"\u1100-\u11ff\uac00-\ud7af"),
    ("kana", r"\u3040-\u30ff"),
    ("han", r"\u3400-\u4dbf\u4e00-\u9fff"),
)
"""Unicode blocks of the scripts told apart; a text's script is the one most of its letters
are in (``han`` with any kana is Japanese: ``kana``)."""
_SCRIPT_PATTERNS: Final = tuple((name, re.compile(f"[{chars}]")) for name, chars in SCRIPTS)
_ASCII_LETTERS: Final = re.compile(r"[A-Za-z]")

STOPWORDS: Final[dict[str, str]] = {
    "en": "the and is are was you your to of in for it that this with not have what how",
    "es": "el la los las y es son que de en por para una un su no con lo del al",
    "fr": "le la les et est sont que de des en pour une un vous ne pas avec du au",
    "de": "der die das und ist sind nicht ein eine zu mit von für auf sie ich den dem",
    "pt": "o a os as e é são que de em para uma um não com do da no na você",
    "it": "il lo la gli le e è sono che di in per una un non con del della",
}
"""A few of the commonest words of the languages a Latin-script text is guessed among."""
_STOPWORDS: Final[dict[str, list[str]]] = {}
"""Each of those words -> the languages it is common in."""
for _language, _words in STOPWORDS.items():
    for _word in _words.split():
        _STOPWORDS.setdefault(_word, []).append(_language)
_WORD: Final = re.compile(r"[^\W\d_]+")
_DIGIT: Final = re.compile(r"\d")
_PUNCTUATION: Final = re.compile(r"[^\w\s]")
_QUESTION: Final = re.compile(r"[?\uff1f](\s|$)|¿")  # and the full-width question mark
_MARKDOWN: Final = re.compile(
    r"^\s{0,3}(#{1,6}\s|[-*+]\s|\d+[.)]\s|>\s|\|.*\|)|\*\*[^*\n]+\*\*|`[^`\n]+`|\[[^\]\n]+\]\(",
    re.MULTILINE,
)
_CODE_LINE: Final = re.compile(
    r"^\s*(def |class |import |from \S+ import|return\b|if .*:$|for .*:$|function\b|const |"
    r"let |var |public |private |#include|SELECT |select )|[;{}]\s*$|=>|==|\)\s*:\s*$",
)


@dataclass(frozen=True, slots=True)
class Descriptors:
    """One text's descriptors, in the orders of :data:`NUMERIC_DESCRIPTORS` and
    :data:`CATEGORICAL_DESCRIPTORS`."""

    numeric: tuple[float, ...]
    categorical: tuple[str, ...]


def script_of(text: str) -> str:
    """The script most of the text's letters are in; ``none`` without letters."""
    if text.isascii():  # most texts: one check in C instead of ten scans
        return "latin" if _ASCII_LETTERS.search(text) else "none"
    counts = {name: len(pattern.findall(text)) for name, pattern in _SCRIPT_PATTERNS}
    if counts["han"] and counts["kana"]:
        counts["kana"] += counts.pop("han")
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] else "none"


def language_of(text: str, script: str) -> str:
    """A guess from the commonest words for Latin-script text (``en``, ``es``, ``fr``, ``de``,
    ``pt``, ``it``; ``latin`` when none stands out), else the script's name."""
    if script != "latin":
        return script
    votes = dict.fromkeys(STOPWORDS, 0)
    for word in _WORD.findall(text.lower()):
        for language in _STOPWORDS.get(word, ()):
            votes[language] += 1
    ranked = sorted(votes.items(), key=lambda kv: -kv[1])
    (best, hits), (_, second) = ranked[0], ranked[1]
    return best if hits >= 2 and hits > second else "latin"


def format_of(text: str) -> str:
    """``json``, ``code``, ``markdown``, ``prose`` or ``empty``. A cut JSON text still reads
    as JSON (the sample keeps only its start)."""
    body = text.strip()
    if not body:
        return "empty"
    if body.startswith("```"):
        fence = body[3:].split("\n", 1)
        if fence[0].strip().lower() == "json":
            return "json"
        return "code"
    if body[0] in "{[" and _looks_like_json(body):
        return "json"
    lines = [line for line in body.splitlines() if line.strip()]
    code = sum(1 for line in lines if _CODE_LINE.search(line))
    if len(lines) >= 2 and code >= 0.4 * len(lines):
        return "code"
    if len(_MARKDOWN.findall(body)) >= 2:
        return "markdown"
    return "prose"


def _looks_like_json(body: str) -> bool:
    try:
        json.loads(body)
    except ValueError:
        # cut: an object's keys and values keep their shape
        return body.count('":') + body.count('": ') >= 2 or body.count('",') >= 2
    return True


def describe(text: str, length: int) -> Descriptors:
    """The descriptors of ``text`` (``length``: the whole text's, before it was cut)."""
    size = max(len(text), 1)
    non_ascii = (len(text) - len(text.encode("ascii", "ignore"))) / size
    script = script_of(text)
    return Descriptors(
        numeric=(
            float(length),
            non_ascii,
            len(_DIGIT.findall(text)) / size,
            len(_PUNCTUATION.findall(text)) / size,
        ),
        categorical=(
            script,
            language_of(text, script),
            format_of(text),
            "question" if _QUESTION.search(text) else "statement",
        ),
    )
