"""The option letter a model chose, from its answer text.

Like the recipe's `parse_letter_response`, the letter is read from `<answer>` when the text has
one (a server that does not split the reasoning off returns it raw), else from the bare text. A
reply naming two different letters ("A or B") is ambiguous and counts as unparsable, never as a
lucky guess; so does the article "A" in "A car turns left".
"""
from __future__ import annotations

import re

LETTERS = "ABCDEFGHIJ"

_ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S | re.I)
_NOISE = re.compile(r"[*_`\"'\[\]]")  # markdown emphasis and quotes around a letter
# The whole reply is one letter: "B", "B.", "(b)", "b)", "B:".
_ALONE = re.compile(r"^\(?\s*([A-Za-z])\s*[).:]?\s*$")
# The reply starts with a letter and its delimiter: "B. Because ...", "D) trucks", "C: ...".
_LEADING = re.compile(r"^\(?([A-Za-z])(?:\)|\.|:)(?:\s|$)")
# "Answer: C", "the answer is d) ...", "option (B)", "I choose B".
_PHRASE = re.compile(r"\b(?:answer|option|choice|choose|pick|select)(?:\s+is)?\s*[:\-]?\s*"
                     r"(\(?)([A-Za-z])(\)|\.|:|,|\s|$)", re.I)
# A letter standing alone anywhere: "(B)", "B)", "B." or a bare capital.
_ANYWHERE = re.compile(r"(?<![A-Za-z0-9])(\()?([A-Z])(\)|\.(?!\w)|:)?(?![A-Za-z0-9])")
_ARTICLE = re.compile(r"\s+(?!(?:or|and|nor|vs|versus|is)\b)[a-z]")


def answer_part(text: str | None) -> str:
    """The `<answer>` content if tagged, else the text without any `<think>` block."""
    if not text:
        return ""
    m = _ANSWER_TAG.search(text)
    if m:
        return m.group(1).strip()
    return _THINK.sub("", text).strip()


def parse_letter(text: str | None, letters: str = LETTERS[:4]) -> str | None:
    """The one option letter `text` names (upper case), or None when it names none or several."""
    body = _NOISE.sub("", answer_part(text)).strip()
    if not body:
        return None
    valid = set(letters.upper())
    for pattern in (_ALONE, _LEADING):
        m = pattern.match(body)
        if m and m.group(1).upper() in valid:
            return m.group(1).upper()
    for m in _PHRASE.finditer(body):
        paren, letter, after = m.groups()
        # A lower-case letter counts only when marked as an option ("(b)", "d)"), so that
        # "the answer is a car" is not read as A.
        if letter.upper() in valid and (letter.isupper() or paren or after in (")", ".", ":")):
            return letter.upper()
    found = set()
    for m in _ANYWHERE.finditer(body):
        paren, letter, delim = m.groups()
        if letter not in valid:
            continue
        # "A" followed by a word is the article, unless marked as an option or joined to
        # another letter ("A or B").
        if letter == "A" and not (paren or delim) and _ARTICLE.match(body[m.end():]):
            continue
        found.add(letter)
    return found.pop() if len(found) == 1 else None
