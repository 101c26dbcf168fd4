"""Counts given as lists: a reasoning that closes on "Successful reads: 1, 2, 3, 5, 6, 7, 9."
has counted seven, whatever numbers the items are.
"""
from __future__ import annotations

import re

# The last sentence: a label, a colon, then two or more short items separated by commas (the
# last maybe by "and"), and nothing after them. An item is a few words or a number, never a
# clause (no verb-like comma splices are told apart: items longer than four words end it).
_ITEM = r"[a-z0-9#][\w#.'/-]*(?:\s+[\w#.'/-]+){0,3}"
_LIST = re.compile(rf"\s*[a-z][\w\s'-]{{0,40}}:\s*({_ITEM}(?:\s*,\s*(?:and\s+)?{_ITEM})+"
                   rf"(?:\s*,?\s+and\s+{_ITEM})?)\s*[.!]?\s*$")
_COUNTED = re.compile(r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|a|an)\s+[a-z]")
_SPLIT = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+")


def listed_count(low: str, at: int) -> tuple[int, int, int] | None:
    """(items, start, end) of a list that closes the reasoning (`low`, lowercased) in its last
    sentence, which starts at `at`; None if it closes on none."""
    m = _LIST.match(low, at)
    if m is None:
        return None
    items = [i for i in _SPLIT.split(m.group(1).strip()) if i]
    if any(_COUNTED.match(i) for i in items):
        return None  # "3 cars, 2 vans": counts to add up, not items to count
    return (len(items), m.start(1), m.end(1)) if len(items) >= 2 else None
