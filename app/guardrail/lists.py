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


# Round 6: a list anywhere in the reasoning that enumerates what is counted, item by item,
# with no total: "In order: a woman with a stroller at 2 s, a man in a raincoat at 5 s, two
# teenagers at 8 s, and finally an older man at 16 s." counts five; "picks at 1.5 s, 3.9 s,
# 6.2 s and 8.8 s" four.
_SEPARATOR = re.compile(r",\s+(?:and\s+)?(?:then\s+)?(?:finally\s+)?|\s+and\s+(?:then\s+)?"
                        r"(?:finally\s+)?")
_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_ENTRY = re.compile(r"(a|an|one|two|three|four|five|six)\s+[a-z]|(?:number|no\.|lane|#)\s*\d+\b")
_MOMENT = re.compile(r"(?:at\s+)?(?:about\s+|roughly\s+|around\s+|~\s*)?\d+(?:\.\d+)?\s*s\b")
_CONTENT = re.compile(r"[a-z]{4,}")
_STOP = frozenset("many from this that with does have what when were they them their there "
                  "into onto about during clip video scene over after before which where".split())


def enumerated_count(low: str, question: str) -> tuple[int, int, int] | None:
    """(count, start, end) of the last list of three or more items in `low` (lowercased) that
    enumerates what the question counts: after a colon, items that each open with an article
    or a number word ("two teenagers": two), "number 14" or "lane 4"; or a run of moments
    ("at 1.5 s, 3.9 s and 6.2 s"). Its sentence must share a word with the question."""
    asked = {w[:4] for w in _CONTENT.findall(question.lower()) if w not in _STOP}
    noun = re.search(r"how many\s+(?:[a-z-]+\s+)??([a-z]{3,})", question.lower())
    stem = noun.group(1)[:4] if noun else None
    found = None
    for start, count, end, items in _lists(low):
        if count < 3 or not _relevant(low, start, end, asked):
            continue
        # Items of which only some name what is counted ("a forklift, a pallet jack, a
        # forklift" for "how many forklifts") list more than it: a subset, not a miscount.
        plain = [_ASIDE.sub("", item) for item in items]  # "(not counting the infant)"
        naming = [stem is not None and (stem in item or " one" in item) for item in plain]
        if any(naming) and not all(naming):
            continue
        found = (count, start, end)
    return found


def _lists(low: str):
    """(start, count, end, items) of each list after a colon and each run of moments."""
    i = low.find(":")
    while i >= 0:
        if not low[i + 1:i + 2].isdigit():  # "1:23" is a time
            end = _sentence_end(low, i + 1)
            count, items = 0, []
            for k, item in enumerate(_SEPARATOR.split(low[i + 1:end].strip())):
                m = _ENTRY.match(item)
                if m is None:
                    count = count if k >= 3 else 0  # "..., all with arms tucked": it ended
                    break
                count += _WORDS.get(m.group(1), 1) if m.group(1) else 1
                items.append(item)
            yield i + 1, count, end, items
        i = low.find(":", i + 1)
    if " s, " not in low:
        return
    for m in _RUN.finditer(low):
        end = _sentence_end(low, m.start())
        n = 0
        for item in _SEPARATOR.split(low[m.start():end]):
            if not _MOMENT.fullmatch(item.strip(" .")):
                break
            n += 1
        yield m.start(), n, end, []


_ASIDE = re.compile(r"\([^()]*\)")
_RUN = re.compile(r"\bat\s+(?:about\s+|roughly\s+|around\s+)?\d+(?:\.\d+)?\s*s,\s")


def _sentence_end(low: str, at: int) -> int:
    ends = [e for e in (low.find(". ", at), low.find(";", at), low.find("\n", at)) if e >= 0]
    return min(ends) if ends else len(low)


def _relevant(low: str, s: int, e: int, asked: set[str]) -> bool:
    start = max(low.rfind(". ", 0, s) + 2, 0)
    return bool({w[:4] for w in _CONTENT.findall(low[start:e]) if w not in _STOP} & asked)
