"""Scores out of the compare family's free-text answers: the 1–10 rating a model gave an image,
in whichever form it answered ("Score: 7", "7/10", "**7**", "seven", {"score": 7}, a bare 7),
or None where there is none, so that unparsed answers are counted and listed, never dropped.

Rules, in order:
1. An explicitly labelled score wins over any other number: a "score"/"rating" label (also a
   JSON key, in text or a ```json fence) or a fraction of the scale's top, "N/10", "N out of
   10". The first valid one is taken. A labelled score outside the scale ("Score: 0", "11/10")
   makes the answer unparsed: it is the model's answer, and any other number would be a guess.
   Fractions of another scale ("70/100", "4/5") are not rescaled: neither number is ever read.
2. Else a phrased score: "I'd rate it a 7", "I would give this 8".
3. Else the first valid bare number ("7", "7.", "**7**"), then the first number word ("seven",
   any case). "one" is read as a score only when labelled, phrased as "one out of ten" or the
   whole answer: elsewhere it is nearly always a pronoun ("this one").
Scale descriptions ("on a scale of 1 to 10", "between 1 and 10", "1-10") are never scores.
Decimals must lie within the scale and are rounded to the nearest integer, halves up (7.5 → 8,
not Python's round-half-to-even).
"""

from __future__ import annotations

import math
import re

WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
_WORD = r"\b(?:" + "|".join(WORDS) + r")\b"
_WORD_NOT_ONE = r"\b(?:" + "|".join(w for w in WORDS if w != "one") + r")\b"
_DIGITS = r"[-−]?\d+(?:\.\d+)?"
# Markup and quoting that may sit between a label and its number: **Score**: "7", (1-10): 7.
_FILL = r"[\s*_\"'`()\[\]]*"
_NOT_FRACTION = r"(?![\w%]|\.\d|\**\s*(?:[/／]|\bout of\b))"

_RANGE = re.compile(
    r"(?<![\d.])(\d+)\s*(?:-|–|—|\bto\b|\bthrough\b|\band\b)\s*(\d+)(?!\.?\d)", re.I
)
_LABEL = re.compile(
    rf"\b(?:score|rating)\b{_FILL}(?:(?:[:=：]|\bis\b|\bof\b|\bwould be\b|\bbe\b){_FILL})?"
    rf"(?P<n>{_DIGITS}|{_WORD})",
    re.I,
)
_FRACTION = re.compile(
    rf"(?<![\w.])(?P<n>{_DIGITS}|{_WORD}){_FILL}(?:/|／|\bout of\b)\s*(?P<d>\d+|{_WORD})",
    re.I,
)
_PHRASE = re.compile(
    rf"\b(?:rate|rated|give|gave|giving|assign|say)\b[^\d.!?\n]{{0,40}}?"
    rf"(?P<n>(?<![\w.\-−])\d+(?:\.\d+)?|{_WORD_NOT_ONE}){_NOT_FRACTION}",
    re.I,
)
_BARE = re.compile(rf"(?<![\w.\-/／−])(?P<n>\d+(?:\.\d+)?){_NOT_FRACTION}")
_BARE_WORD = re.compile(rf"(?P<n>{_WORD_NOT_ONE}){_NOT_FRACTION}", re.I)


def number(token: str) -> float:
    """A number from digits (any script), a minus sign or a number word."""
    token = token.strip().lower().replace("−", "-")
    return float(WORDS[token]) if token in WORDS else float(token)


def on_scale(token: str, low: int, high: int) -> int | None:
    """The score a token stands for, rounded half up, or None outside [low, high]."""
    value = number(token)
    return math.floor(value + 0.5) if low <= value <= high else None


def without_scale_descriptions(text: str, low: int, high: int) -> str:
    """The text with "1 to 10"-like ranges blanked (same length, so positions hold)."""

    def blank(match: re.Match) -> str:
        first, last = number(match.group(1)), number(match.group(2))
        return " " * len(match.group(0)) if first in (0, low) and last == high else match.group(0)

    return _RANGE.sub(blank, text)


def labelled(text: str, low: int, high: int) -> tuple[bool, int | None]:
    """Whether the text labels a score at all, and the first labelled score on the scale."""
    found = [(m.start(), on_scale(m.group("n"), low, high)) for m in _LABEL.finditer(text)]
    for match in _FRACTION.finditer(text):
        if number(match.group("d")) == high:
            found.append((match.start(), on_scale(match.group("n"), low, high)))
    scores = [score for _, score in sorted(found, key=lambda f: f[0]) if score is not None]
    return bool(found), (scores[0] if scores else None)


def first_on_scale(pattern: re.Pattern, text: str, low: int, high: int) -> int | None:
    for match in pattern.finditer(text):
        score = on_scale(match.group("n"), low, high)
        if score is not None:
            return score
    return None


def extract_score(text: str, low: int = 1, high: int = 10) -> int | None:
    """The score in [low, high] that a free-text answer gives, by the module's rules, or None
    where there is none (a refusal, an empty answer, only numbers outside the scale)."""
    text = without_scale_descriptions(text or "", low, high)
    found, score = labelled(text, low, high)
    if found:
        return score
    for pattern in (_PHRASE, _BARE, _BARE_WORD):
        score = first_on_scale(pattern, text, low, high)
        if score is not None:
            return score
    whole = re.sub(r"[\W_]+", "", text).lower()
    return WORDS[whole] if whole == "one" and low <= 1 <= high else None


def parse_answers(
    answers: list[str], low: int = 1, high: int = 10
) -> tuple[list[int | None], list[int]]:
    """Each answer's score (None where unparsed) and the indices of the unparsed answers, for
    the family to count and list."""
    scores = [extract_score(answer, low, high) for answer in answers]
    return scores, [i for i, score in enumerate(scores) if score is None]
