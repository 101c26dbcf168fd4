"""Find quantities in model text and the objects each one is said about.

Cost matters (the guardrail runs on every response), so the text is scanned once with one regex
that only starts at digits, units are converted with factors pint computed at load time, and
sentence/clause windows and object mentions are looked up only around quantities a rule needs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import pint

_UREG = pint.UnitRegistry()  # slow to build (~0.3 s): once per process

_DIMENSIONS = {"[length] / [time]": "speed", "[length] / [time] ** 2": "acceleration",
               "[length]": "length", "[time]": "time", "dimensionless": "ratio", "[mass]": "mass"}

_NUMBER = r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
_CLOCK = r"(?P<clock>\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?)"
_SENTENCE_ENDS = (". ", ".\n", "! ", "? ", "\n")
_CLAUSE_BREAK = re.compile(r"[,;:()]|\s(?:and|but|while|whereas|as|when|although|though|because|"
                           r"since|so|then)\s", re.IGNORECASE)
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
    otherwise: tuple[float, str] | None = None


class Quantity(NamedTuple):
    value: float  # SI base units: m, s, m/s, m/s², ratio (0.5 for 50 %); bare numbers as written
    dimension: str | None  # None for a bare number
    start: int
    end: int
    clock: bool = False  # written as m:ss


class Scanner:
    """Compiled from the rule file's `units` and `objects` sections."""

    def __init__(self, units: dict[str, Any], objects: dict[str, list[str]]):
        self.units: dict[str, UnitSpec] = {}
        for spelling, spec in units.items():
            if isinstance(spec, str):
                self.units[_unit_key(spelling)] = UnitSpec(*to_si(spec))
            else:
                self.units[_unit_key(spelling)] = UnitSpec(
                    *to_si(spec["unit"]), near=re.compile(spec["near"], re.IGNORECASE),
                    otherwise=to_si(spec["otherwise"]))
        # Longest spelling first so "m/s²" wins over "m/s" and "m"; one-letter units are case
        # sensitive ("G" is gravity, "s" is not "S").
        alts = [re.escape(s) if len(s) == 1 else f"(?i:{re.escape(s)})"
                for s in sorted(units, key=len, reverse=True)]
        self._number_re = re.compile(
            rf"{_CLOCK}|(?P<sign>[-−]\s?)?{_NUMBER}(?:[\s\u00a0]?-?(?P<unit>{'|'.join(alts)}))?"
            r"(?![\w²^/])")
        self.object_classes = tuple(objects)
        self._object_re = re.compile(
            "|".join(rf"(?P<{name}>\b(?:{'|'.join(words)})\b)" for name, words in objects.items()),
            re.IGNORECASE)

    def scan(self, text: str) -> "ScannedText":
        return ScannedText(text, self)

    def quantities(self, text: str) -> list[Quantity]:
        out: list[Quantity] = []
        for m in self._number_re.finditer(text):
            start = m.start()
            before = text[start - 1] if start else " "
            if before.isalnum() and not m.group("sign") or before in "._":
                continue  # part of an identifier, a version or a decimal: "A1", "v2.5"
            if m.group("clock"):
                parts = [float(p) for p in m.group("clock").split(":")]
                seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
                out.append(Quantity(seconds, "time", start, m.end(), clock=True))
                continue
            value = float(m.group("num").replace(",", ""))
            # A minus right after a number is a range ("2-3 m"), not a sign.
            if m.group("sign") and not text[max(0, start - 3):start].rstrip()[-1:].isdigit():
                value = -value
            unit = m.group("unit")
            if unit is None:
                out.append(Quantity(value, None, start, m.end()))
                continue
            spec = self.units[_unit_key(unit)]
            factor, dim = spec.factor, spec.dimension
            if spec.near is not None and not self._near(text, spec.near, start):
                factor, dim = spec.otherwise  # type: ignore[misc]
            out.append(Quantity(value * factor, dim, start, m.end()))
        return out

    def _near(self, text: str, pattern: re.Pattern[str], pos: int) -> bool:
        s, e = sentence_bounds(text, pos, pos)
        return pattern.search(text, s, e) is not None

    def objects(self, text: str, start: int, end: int) -> list[tuple[str, str]]:
        """(class, words as written) of each object mention in text[start:end]."""
        return [(m.lastgroup or "", m.group()) for m in self._object_re.finditer(text, start, end)]


def _unit_key(spelling: str) -> str:
    return spelling if len(spelling) == 1 else spelling.lower()


def sentence_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    lo, hi = max(0, start - _WINDOW), min(len(text), end + _WINDOW)
    s = max(text.rfind(sep, lo, start) + len(sep) if text.rfind(sep, lo, start) >= 0 else lo
            for sep in _SENTENCE_ENDS)
    ends = [i for i in (text.find(sep, end, hi) for sep in _SENTENCE_ENDS) if i >= 0]
    return s, min(ends, default=hi)


class ScannedText:
    """One field's text, its quantities, and the windows rules ask about."""

    def __init__(self, text: str, scanner: Scanner):
        self.text = text
        self._scanner = scanner

    @cached_property
    def quantities(self) -> list[Quantity]:
        return self._scanner.quantities(self.text)

    @cached_property
    def lower(self) -> str:
        return self.text.lower()

    def sentence(self, q: Quantity) -> tuple[int, int]:
        return sentence_bounds(self.text, q.start, q.end)

    def clause(self, q: Quantity) -> tuple[int, int]:
        s, e = self.sentence(q)
        for m in _CLAUSE_BREAK.finditer(self.text, s, q.start):
            s = m.end()
        m = _CLAUSE_BREAK.search(self.text, q.end, e)
        return s, m.start() if m else e

    def subjects(self, q: Quantity) -> dict[str, str]:
        """Object classes the quantity may be about, each with its first mention: the clause's,
        else the sentence's, else the last one mentioned shortly before (a pronoun's referent)."""
        for s, e in (self.clause(q), self.sentence(q)):
            found = self._scanner.objects(self.text, s, e)
            if found:
                first: dict[str, str] = {}
                for cls, words in found:
                    first.setdefault(cls, words)
                return first
        before = self._scanner.objects(self.text, max(0, q.start - _WINDOW // 2), q.start)
        return dict(before[-1:])
