"""Find quantities in model text and the objects each one is said about.

Cost matters (the guardrail runs on every response, and a 4,096-token output is 16 k characters),
so: the lowercased text is scanned once by one regex whose unit alternation is all literals
grouped by first character (sre's fast path; object spellings are compiled the same way); units
are converted with factors pint computed at load time; sentence and clause windows and object
mentions are looked up only around quantities a rule could reject, mentions once per sentence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
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
_PRONOUN = re.compile(r"\b(?:it|its|they|their|them|he|his|she|her)\b")
_COMPARISON_WORDS = ("compared", "than", "relative", "versus", "vs")
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


def _alternation(literals: list[str], escape=re.escape) -> str:
    """Literals grouped by first character, so sre tests ~1 branch per position instead of all
    of them; order within a group is kept, so earlier (longer) literals still win."""
    buckets: dict[str, list[str]] = {}
    for lit in literals:
        buckets.setdefault(lit[0], []).append(escape(lit[1:]))
    return "|".join(f"{re.escape(c)}(?:{'|'.join(rest)})" for c, rest in buckets.items())


def _normalized(spelling: str) -> str:
    """'End-Effector' -> 'end effector': how object spellings are compared."""
    return " ".join(re.split(r"[\s\-]+", spelling.lower().strip()))


def _phrase_pattern(text: str) -> str:
    return r"[\s\-]".join(re.escape(w) for w in text.split(" "))


class Scanner:
    """Compiled from the rule file's `units` and `objects` sections."""

    def __init__(self, units: dict[str, Any], objects: dict[str, list[str]]):
        self.units: dict[str, UnitSpec] = {}
        for spelling, spec in units.items():
            if isinstance(spec, str):
                self.units[spelling.lower()] = UnitSpec(*to_si(spec))
            else:
                self.units[spelling.lower()] = UnitSpec(
                    *to_si(spec["unit"]), near=re.compile(spec["near"]),
                    unless=re.compile(spec.get("unless", "(?!)")), otherwise=to_si(spec["otherwise"]))
        alts = _alternation(sorted(self.units, key=len, reverse=True))
        # A number with a unit or an m:ss clock; bare numbers fail inside the regex, which is
        # far cheaper than in Python. [0-9] scans faster than \d (no Unicode categories).
        self._number_re = re.compile(
            r"([0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?)"
            rf"(?:((?::[0-9][0-9]){{1,2}}(?:\.[0-9]+)?)|[ \u00a0]?-?({alts})(?![a-z0-9²^/]))")
        # Object spellings are words or phrases; "-s" and "-es" plurals come for free. The first
        # class to list a spelling owns it.
        self.object_classes = tuple(objects)
        self._classes: dict[str, str] = {}
        for cls, spellings in objects.items():
            for spelling in spellings:
                base = _normalized(spelling)
                for form in (base, base + "s", base + "es"):
                    self._classes.setdefault(form, cls)
        bases = sorted({_normalized(sp) for sps in objects.values() for sp in sps},
                       key=len, reverse=True)
        self._object_re = re.compile(
            rf"(?<![a-z0-9])(?:{_alternation(bases, escape=_phrase_pattern)})(?:e?s)?(?![a-z0-9])")

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
        """Object mentions in low[start:end], in order; a phrase hides the words inside it
        ("reach truck" is a forklift, not a truck)."""
        found = [(m.start(), m.group()) for m in self._object_re.finditer(low, start, end)]
        window = low[start:end]
        comparing = any(w in window for w in _COMPARISON_WORDS)
        classes = self._classes
        return [Mention(at, classes.get(words) or classes[_normalized(words)], words, comparing and
                        _COMPARED.search(low, max(0, at - 20), at) is not None)
                for at, words in found]


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
        self._searches: dict[tuple[re.Pattern[str], int], bool] = {}

    def sentence(self, q: Quantity) -> tuple[int, int]:
        bounds = self._sentences.get(q.start)
        if bounds is None:
            bounds = self._sentences[q.start] = sentence_bounds(self.text, q.start, q.end)
        return bounds

    def sentence_has(self, pattern: re.Pattern[str], q: Quantity) -> bool:
        """Whether the quantity's sentence matches; cached, as many rules ask about one sentence."""
        s, e = self.sentence(q)
        found = self._searches.get((pattern, s))
        if found is None:
            found = self._searches[(pattern, s)] = pattern.search(self.text, s, e) is not None
        return found

    def clause(self, q: Quantity) -> tuple[int, int]:
        s, e = self.sentence(q)
        for m in _CLAUSE_BREAK.finditer(self.text, s, q.start):
            s = m.end()
        m = _CLAUSE_BREAK.search(self.text, q.end, e)
        return s, m.start() if m else e

    def subjects(self, q: Quantity) -> dict[str, str]:
        """Object classes the quantity may be about, each with its first mention: the clause's,
        else the sentence's, else, if the sentence has a pronoun, the last one mentioned shortly
        before in the paragraph. Objects something is compared with do not count."""
        s, e = self.sentence(q)
        found = self._mentions.get(s)
        if found is None:
            found = self._mentions[s] = [
                m for m in self._scanner.mentions(self.text, s, e) if not m.compared]
        if len({m.cls for m in found}) > 1:  # only then can the clause narrow it down
            cs, ce = self.clause(q)
            found = [m for m in found if cs <= m.pos < ce] or found
        elif not found and _PRONOUN.search(self.text, s, e):
            # "It accelerates to 500 km/h": the referent is the last object of the paragraph.
            lo = max(0, s - _WINDOW // 2, self.text.rfind("\n\n", 0, s) + 2)
            found = self._scanner.mentions(self.text, lo, s)[-1:]
        first: dict[str, str] = {}
        for m in found:
            first.setdefault(m.cls, m.words)
        return first
