"""Find quantities in model text and the objects each one is said about.

Cost matters (the guardrail runs on every response, and a 4,096-token output is 16 k characters),
so: the lowercased text is scanned once by one regex whose unit alternation is all literals
(sre's fast path); units are converted with factors pint computed at load time; sentence and
clause windows and object mentions are looked up only around quantities a rule could reject,
with mentions cached per sentence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

import pint

_UREG = pint.UnitRegistry()  # slow to build (~0.3 s): once per process

_DIMENSIONS = {"[length] / [time]": "speed", "[length] / [time] ** 2": "acceleration",
               "[length]": "length", "[time]": "time", "dimensionless": "ratio", "[mass]": "mass"}
_SENTENCE_ENDS = (". ", "\n", "? ", "! ")
_CLAUSE_BREAK = re.compile(r"[,;:()]|\s(?:and|but|while|whereas|as|when|although|though|because|"
                           r"since|so|then)\s")
# The thing compared with is not the thing measured: "4 m tall compared with the shelving".
_COMPARED = re.compile(r"(?:compared (?:with|to)|than|relative to|versus|vs\.?)\s+(?:the\s+|an?\s+)?$")
_WINDOW = 400  # no sentence is longer; bounds every look-around


def to_si(expr: str) -> tuple[float, str]:
    """'30 km/h' -> (8.33, 'speed'): magnitude in SI base units and the dimension's name."""
    q = _UREG.Quantity(expr) if any(c.isdigit() for c in expr) else _UREG.Quantity(1, expr)
    base = q.to_base_units()
    dim = _DIMENSIONS.get(str(base.dimensionality))
    if dim is None:
        raise ValueError(f"{expr!r}: unsupported dimension {base.dimensionality}")
    return float(base.magnitude), dim


@dataclass(frozen=True)
class UnitSpec:
    factor: float
    dimension: str
    # Spellings like "g" mean one unit near some words (braking) and another elsewhere (grams).
    near: re.Pattern[str] | None = None
    unless: re.Pattern[str] | None = None
    otherwise: tuple[float, str] = (1.0, "")


class Quantity(NamedTuple):
    value: float  # SI base units: m, s, m/s, m/s², ratio (0.5 for 50 %)
    dimension: str
    start: int
    end: int
    clock: bool = False  # written as m:ss


class Mention(NamedTuple):
    pos: int
    cls: str
    words: str
    compared: bool  # the object is what something is compared with


def _alternation(patterns: list[str]) -> str:
    """Group alternatives by first letter, which makes sre test ~1 branch per word instead of
    all of them; falls back to a flat list when some pattern does not start with a letter."""
    if not all(p[:1].isalpha() and p[1:2] not in ("?", "*", "+", "{") for p in patterns):
        return "|".join(patterns)
    buckets: dict[str, list[str]] = {}
    for p in patterns:
        buckets.setdefault(p[0], []).append(p[1:])
    return "|".join(f"{c}(?:{'|'.join(rest)})" for c, rest in buckets.items())


class Scanner:
    """Compiled from the rule file's `units` and `objects` sections (matched in lower case)."""

    def __init__(self, units: dict[str, Any], objects: dict[str, list[str]]):
        self.units: dict[str, UnitSpec] = {}
        for spelling, spec in units.items():
            if isinstance(spec, str):
                self.units[spelling.lower()] = UnitSpec(*to_si(spec))
            else:
                self.units[spelling.lower()] = UnitSpec(
                    *to_si(spec["unit"]), near=re.compile(spec["near"]),
                    unless=re.compile(spec.get("unless", "(?!)")), otherwise=to_si(spec["otherwise"]))
        alts = "|".join(re.escape(s) for s in sorted(self.units, key=len, reverse=True))
        # A number with a unit or an m:ss clock; bare numbers fail inside the regex, which is
        # far cheaper than in Python. [0-9] scans faster than \d (no Unicode categories).
        self._number_re = re.compile(
            r"([0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?)"
            rf"(?:((?::[0-9][0-9]){{1,2}}(?:\.[0-9]+)?)|[ \u00a0]?-?({alts})(?![a-z0-9²^/]))")
        self.object_classes = tuple(objects)
        bad = [p for ps in objects.values() for p in ps if p != p.lower()]
        if bad:
            raise ValueError(f"object patterns are matched in lower case; got {bad}")
        self._object_patterns = [(cls, re.compile(rf"(?:{'|'.join(ps)})"))
                                 for cls, ps in objects.items()]
        self._object_re = re.compile(
            rf"(?<!\w)(?:{_alternation([p for ps in objects.values() for p in ps])})\b")
        self.classify = lru_cache(maxsize=4096)(self._classify)

    def _classify(self, words: str) -> str:
        return next(cls for cls, pattern in self._object_patterns if pattern.fullmatch(words))

    def quantities(self, low: str) -> list[Quantity]:
        out: list[Quantity] = []
        units = self.units
        for m in self._number_re.finditer(low):
            start, end = m.span()
            before = low[start - 1] if start else " "
            if before.isalnum() or before in "._":
                continue  # part of an identifier, a version or a decimal: "a1", "v2.5"
            num, clock, unit = m.groups()
            value = float(num.replace(",", "") if "," in num else num)
            # A minus after a word character is a hyphen or a range ("2-3 m"), not a sign.
            if before in "-−" and not (start > 1 and low[start - 2].isalnum()):
                value, start = -value, start - 1
            if clock:
                parts = [value, *(float(p) for p in clock[1:].split(":"))]
                seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
                out.append(Quantity(seconds, "time", start, end, clock=True))
                continue
            spec = units[unit]
            factor, dim = spec.factor, spec.dimension
            if spec.near is not None:
                s, e = sentence_bounds(low, start, end)
                if not spec.near.search(low, s, e) or spec.unless.search(low, s, e):  # type: ignore[union-attr]
                    factor, dim = spec.otherwise
            out.append(Quantity(value * factor, dim, start, end))
        return out

    def mentions(self, low: str, start: int, end: int) -> list[Mention]:
        return [Mention(m.start(), self.classify(m.group()), m.group(),
                        _COMPARED.search(low, max(0, m.start() - 20), m.start()) is not None)
                for m in self._object_re.finditer(low, start, end)]


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo, hi = max(0, start - _WINDOW), min(len(text), end + _WINDOW)
    s = lo
    for sep in _SENTENCE_ENDS:
        i = text.rfind(sep, lo, start)
        if i >= 0 and i + len(sep) > s:
            s = i + len(sep)
    e = hi
    for sep in _SENTENCE_ENDS:
        i = text.find(sep, end, e)
        if i >= 0:
            e = i
    return s, e


class ScannedText:
    """One field's text (lowercased: every pattern is), its quantities, and the windows rules
    ask about, each computed at most once."""

    def __init__(self, text: str, scanner: Scanner):
        self.raw = text  # for quoting in messages
        self.text = text.lower()
        self._scanner = scanner
        self.quantities = scanner.quantities(self.text)
        self._sentences: dict[int, tuple[int, int]] = {}
        self._mentions: dict[int, list[Mention]] = {}

    def sentence(self, q: Quantity) -> tuple[int, int]:
        bounds = self._sentences.get(q.start)
        if bounds is None:
            bounds = self._sentences[q.start] = sentence_bounds(self.text, q.start, q.end)
        return bounds

    def clause(self, q: Quantity) -> tuple[int, int]:
        s, e = self.sentence(q)
        for m in _CLAUSE_BREAK.finditer(self.text, s, q.start):
            s = m.end()
        m = _CLAUSE_BREAK.search(self.text, q.end, e)
        return s, m.start() if m else e

    def subjects(self, q: Quantity) -> dict[str, str]:
        """Object classes the quantity may be about, each with its first mention: the clause's,
        else the sentence's, else the last one mentioned shortly before (a pronoun's referent).
        Objects something is compared with do not count."""
        s, e = self.sentence(q)
        in_sentence = self._mentions.get(s)
        if in_sentence is None:
            in_sentence = self._mentions[s] = self._scanner.mentions(self.text, s, e)
        in_sentence = [m for m in in_sentence if not m.compared]
        found = in_sentence
        if len({m.cls for m in in_sentence}) > 1:  # only then can the clause narrow it down
            cs, ce = self.clause(q)
            found = [m for m in in_sentence if cs <= m.pos < ce] or in_sentence
        if not found:
            found = self._scanner.mentions(self.text, max(0, s - _WINDOW // 2), s)[-1:]
        first: dict[str, str] = {}
        for m in found:
            first.setdefault(m.cls, m.words)
        return first
