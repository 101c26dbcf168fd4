"""Round 7's cost changes against the plain way of doing the same thing: the word alternations
as a trie, patterns that open with an assertion searched where their needles are, and the
conclusion pattern's letter-first alternatives must all match exactly as before."""
from __future__ import annotations

import random
import re

from app.guardrail import choices
from app.guardrail.objects import _FINDER_PRONOUNS, _alternation
from app.guardrail.prefilter import windowed

WORDS = ["car", "cart", "carts", "cargo", "they", "their", "his", "he", "she", "train", "bus", "buses", "bus stop", "robot", "robots", "it",
         "its", "the", "weigh", "weighs", "mass", "a", "b", "c", "(b)", "so", "answer", "is",
         "fits", "best", "option", ",", ".", "\n", "-", "car-park"]


def _texts(n: int, seed: int) -> list[str]:
    r = random.Random(seed)
    return [" ".join(r.choice(WORDS) for _ in range(r.randint(1, 40))) for _ in range(n)]


def _plain_alternation(literals: list[str]) -> str:
    return "|".join(map(re.escape, literals))


def test_trie_matches_the_literal_the_alternation_matched():
    literals = sorted({"car", "cart", "cargo", "bus", "bus stop", "robot", "b", "weigh"},
                      key=len, reverse=True)
    tail = r"(?:e?s)?(?![a-z0-9])"
    trie = re.compile(rf"[^a-z0-9]((?:{_alternation(literals)}){tail})")
    plain = re.compile(rf"[^a-z0-9]((?:{_plain_alternation(literals)}){tail})")
    for text in _texts(500, 3):
        assert [m.regs for m in trie.finditer(text)] == [m.regs for m in plain.finditer(text)]


def test_pronouns_merged_into_the_words_match_as_a_branch_after_them():
    words = sorted({"car", "cart", "truck", "train", "heron", "it", "shuttle"}, key=len,
                   reverse=True)
    pronouns = "|".join(c + tail for c, tail in _FINDER_PRONOUNS.items())
    plain = re.compile(rf"[^a-z0-9]((?:{_alternation(words)})|{pronouns})")
    merged = re.compile(rf"[^a-z0-9]({_alternation(words, after=_FINDER_PRONOUNS)})")
    texts = _texts(300, 4) + [" they took the train; its cart, he, his heron", " shuttles he"]
    for text in texts:
        for pos in range(len(text)):
            a, b = plain.search(text, pos), merged.search(text, pos)
            assert (a and (a.span(), a.group(1))) == (b and (b.span(), b.group(1)))


def test_windowed_answers_as_the_search():
    patterns = [re.compile(r"\b(?:weigh|mass|payload|heav|light|lift|carr|hold|grams)"),
                re.compile(r"\b(?:cart|robots?)\b", re.IGNORECASE), re.compile(r"\bbus\b"),
                re.compile(r"so\s+\w+")]
    r = random.Random(7)
    for text in _texts(300, 5):
        for p in patterns:
            for folds in (False, True):
                search = windowed(p, folds)
                for _ in range(5):
                    s = r.randint(0, len(text))
                    e = r.randint(s, len(text))
                    assert search(text, s, e) == (p.search(text, s, e) is not None)


def test_letter_first_alternatives_match_as_the_optional_bracket():
    rest = r"\)?,?\s+(?:is|fits)\s+best\b"
    plain = re.compile(rf"[^a-z](?:\(?([a-h]){rest})")
    split = re.compile("[^a-z](?:" + "|".join(choices._letter_first(rest)) + ")")
    texts = _texts(300, 9) + [" (b) is best", " b fits best", " (c), is best", " a fits bestly"]
    for text in texts:
        for pos in range(len(text)):
            a, b = plain.search(text, pos), split.search(text, pos)
            assert (a and (a.span(), a.start(a.lastindex))) == \
                (b and (b.span(), b.start(b.lastindex)))


def test_conclusions_read_as_before():
    for text, letter in (("So the answer is B.", "B"), ("Option C fits best.", "C"),
                         ("(A) is the correct one.", "A"), ("So C and D are out. B.", "B"),
                         ("B matches most closely", "B"), ("It is a car.", None)):
        found = choices.concluded_letter(text)
        assert (found and found[0]) == letter
