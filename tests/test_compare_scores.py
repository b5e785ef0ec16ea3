"""Score extraction on answers as models give them: every format of a 1–10 score, labelled
scores before other numbers, scale descriptions never read as scores, out-of-scale and
unparseable answers as None, and the unparsed ones listed."""

from __future__ import annotations

import pytest

from ftdag.compare.scores import extract_score, parse_answers

ANSWERS = [
    # the plain formats
    ("Score: 7", 7),
    ("score=7", 7),
    ("7/10", 7),
    ("7 / 10", 7),
    ("10/10, a flawless shot.", 10),
    ("I would rate this a 7 out of 10", 7),
    ("seven out of ten", 7),
    ("**7**", 7),
    ("Rating: **8**/10", 8),
    ("**Score:** 9\n\nThe lighting is soft and even.", 9),
    ("seven", 7),
    ("SEVEN.", 7),
    ("This one is a seven.", 7),  # "one" is a pronoun here
    ("One.", 1),
    ("7", 7),
    ("7.", 7),
    ("  \n6\n", 6),
    # JSON, bare, embedded, fenced, with other keys, the score as a string or a float
    ('{"score": 7}', 7),
    ('Here is my answer: {"score": 4, "reason": "blurry"}', 4),
    ('```json\n{"reasoning": "3 cars, 2 people", "score": "6"}\n```', 6),
    ('{"id": 3, "rating": 5, "max": 10}', 5),
    ('{"score": 7.0}', 7),
    ('{"score_explanation": "2 of 3 rules met", "score": 8}', 8),
    # labelled scores before other numbers; scale descriptions are not scores
    ("On a scale of 1 to 10, I'd give it 7", 7),
    ("There are 3 cars; score: 6", 6),
    ("Rating (1-10): 4", 4),
    ("Between 1 and 10, a solid 6.", 6),
    ("I see 2 dogs and 1 cat. I would rate it 8.", 8),
    ("I rate it 8/10, better than the 5/10 I gave the last one", 8),
    ("Half (1/2) of the frame is sky; I would give it 6", 6),
    ("The composition is strong (2 leading lines), overall 7/10.", 7),
    # decimals: rounded to the nearest integer, halves up
    ("7.5", 8),
    ("Score: 6.5/10", 7),
    ("Score: 8.2", 8),
    ("3.5% of the image is sky. I'd give 7", 7),
    # Unicode: full-width digits and colon, keycap emoji, an en dash range
    ("Score：８", 8),
    ("7️⃣", 7),
    ("Note (1–10) : ⭐ 9/10 ✨", 9),
    # out of the scale, on another scale, refusals, nothing
    ("0", None),
    ("11", None),
    ("Score: 0", None),
    ("Score: 11/10", None),
    ("70/100", None),
    ("Score: 70/100, there are 3 people", None),
    ("4/5 stars", None),
    ("I'd give it -1", None),
    ("10.5", None),
    ("I cannot rate images.", None),
    ("As GPT-4 I cannot rate images on a scale of 1-10.", None),
    ("I'm sorry, but I can't help with that.", None),
    ("", None),
    ("Score: N/A", None),
]


@pytest.mark.parametrize(("answer", "expected"), ANSWERS)
def test_extract_score(answer, expected):
    assert extract_score(answer) == expected


def test_the_table_covers_enough_answers():
    assert len(ANSWERS) >= 25
    assert sum(expected is None for _, expected in ANSWERS) >= 8


def test_another_scale_bounds_what_is_valid():
    assert extract_score("4/5", low=1, high=5) == 4
    assert extract_score("7/10", low=1, high=5) is None  # a fraction of another scale
    assert extract_score("On a scale of 1 to 5, I'd give it 4", low=1, high=5) == 4
    assert extract_score("0", low=0, high=10) == 0


def test_the_unparsed_answers_are_counted_and_listed():
    answers = ["Score: 7", "I cannot rate images.", "8/10", "", "nine"]
    scores, unparsed = parse_answers(answers)
    assert scores == [7, None, 8, None, 9]
    assert unparsed == [1, 3]
