"""Sizes and masses said through a comparison (round 6): "the robot is about four times his
height, and he is about 1.8 m" is a height of 7.2 m; "he looks a metre taller than the 2.35 m
bar" one of 3.35 m; "three times heavier than the 40 kg crate" a mass of 120 kg.

The value is checked, like a derived speed, against the lowest bound the rule file's quantity
rules give the subject's class in that dimension (derived.py); a quantity rule's `requires`
(\"tall\", \"weighs\") is not asked: the comparison itself says the number is a size or a mass.
Where a sentence offers several references, the smallest gives the value.

Cost: two str.find over the text ("than", " times ", "twice "); nothing more in most outputs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Iterator

from app.guardrail.base import Document, Finding
from app.guardrail.derived import DerivedRule
from app.guardrail.kinematics import Derivation
from app.guardrail.scan import Quantity
from app.guardrail.scanned import ScannedText

_FACTORS = {"twice": 2.0, "two": 2.0, "three": 3.0, "four": 4.0, "five": 5.0, "six": 6.0,
            "seven": 7.0, "eight": 8.0, "nine": 9.0, "ten": 10.0, "a": 1.0, "one": 1.0,
            "half a": 0.5}
_UNITS = {"m": 1.0, "metre": 1.0, "metres": 1.0, "meter": 1.0, "meters": 1.0, "cm": 0.01,
          "mm": 0.001, "ft": 0.3048, "feet": 0.3048, "foot": 0.3048, "kg": 1.0, "kilo": 1.0,
          "kilos": 1.0, "kilogram": 1.0, "kilograms": 1.0, "t": 1000.0, "tonne": 1000.0,
          "tonnes": 1000.0, "ton": 1000.0, "tons": 1000.0}
_LENGTH_WORDS = ("height", "size", "length", "taller", "higher", "longer", "bigger", "tall",
                 "high", "long")
_NUMBER = r"(\d+(?:\.\d+)?|twice|two|three|four|five|six|seven|eight|nine|ten|half a|a|one)"
_UNIT = r"(m|metres?|meters?|cm|mm|ft|feet|foot|kg|kilos?|kilograms?|t|tonnes?|tons?)\b"
# "four times his height", "3 times taller than", "twice the height of", "ten times heavier"
_TIMES = re.compile(
    rf"(?<![\w.]){_NUMBER}\s+times\s+(?:(?:his|her|its|their|the|a|an)\s+(?:[\w-]+['\u2019]s\s+)?)?"
    r"(height|size|length|weight|mass|taller|higher|longer|heavier|bigger|as (?:tall|high|long|"
    r"heavy))\b|(?<![\w.])(twice)\s+(?:the|his|her|its|their)\s+(height|length|weight|mass)\b")
# "his head is roughly twice that", "three times as much": the value said just before.
_THAT = re.compile(rf"(?<![\w.]){_NUMBER}\s+(?:times\s+)?(?:that|this|as (?:tall|high|long|much|"
                   r"heavy))\b")
# "a metre taller than the 2.35 m bar", "about 40 cm higher than", "200 kg heavier than"
_DELTA = re.compile(rf"(?<![\w.]){_NUMBER}\s*{_UNIT}\s+(taller|higher|longer|heavier)\s+than\b")
# A length or a mass, not a rate: "2 m/s", "3 kg per box" are none.
_VALUE = re.compile(rf"(?<![\w.])(\d+(?:\.\d+)?)\s*{_UNIT}(?![/²^]|\s*per\b)")
_HEDGE = re.compile(r"(?:about|roughly|around|some|nearly|almost|maybe|perhaps)\s+$")


def _factor(word: str) -> float:
    return _FACTORS[word] if word in _FACTORS else float(word)


def _dimension(word: str) -> str:
    return "length" if word.split(" ")[-1] in _LENGTH_WORDS else "mass"


def _values(low: str, s: int, e: int, dimension: str, skip: tuple[int, int] = (-1, -1)):
    for m in _VALUE.finditer(low, s, e):
        if skip[0] <= m.start() < skip[1]:
            continue
        unit = m.group(2)
        is_mass = unit[0] in "kt"
        if is_mass == (dimension == "mass"):
            yield m, float(m.group(1)) * _UNITS[unit]


def comparisons(st: ScannedText) -> list[Derivation]:
    """The sizes and masses the field's comparisons imply, worked out once per field."""
    found = st.memo.get("compared")
    if found is not None:
        return found
    found = st.memo["compared"] = []
    low, raw = st.text, st.raw
    for needle, pattern in ((" times ", _TIMES), ("than", _DELTA), ("twice ", _THAT)):
        i = low.find(needle)
        while i >= 0:
            m = pattern.search(low, max(0, i - 40), i + 40)
            i = low.find(needle, i + 1)
            if m is None:
                continue
            s, e = st.bounds(m.start(), m.end())
            if pattern is _THAT:
                if m.group(1) == "a":
                    continue
                # Of the kind of the value said last before it in the sentence.
                before = list(_VALUE.finditer(low, s, m.start()))
                if not before:
                    continue
                ref = before[-1]
                dim = "mass" if ref.group(2)[0] in "kt" else "length"
                value = _factor(m.group(1)) * float(ref.group(1)) * _UNITS[ref.group(2)]
                said = f"{_factor(m.group(1)):g} × {raw[ref.start():ref.end()]}"
            elif pattern is _TIMES:
                n, word = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
                dim = _dimension(word)
                refs = list(_values(low, s, e, dim))
                if not refs:
                    continue
                ref, v = min(refs, key=lambda r: r[1])
                value, said = _factor(n) * v, f"{_factor(n):g} × {raw[ref.start():ref.end()]}"
            else:
                dim = _dimension(m.group(3))
                ref = next(_values(low, m.end(), min(e, m.end() + 40), dim), None)
                if ref is None:
                    continue
                ref, v = ref
                delta = _factor(m.group(1)) * _UNITS[m.group(2)]
                value = v + delta
                said = f"{raw[ref.start():ref.end()]} + {raw[m.start():m.start(3)].strip()}"
            anchor = Quantity(value, dim, m.start(), m.end())
            found.append(Derivation(dim, value, said, m.start(), max(m.end(), ref.end()),
                                    anchor))
    return found


@dataclass(frozen=True)
class ComparedRule(DerivedRule):
    """A size or mass said through a comparison, above the subject class's bound."""

    def limit(self, st: ScannedText, cls: str, at: Quantity) -> float | None:
        return self.limits.get(cls)

    def check(self, doc: Document) -> Iterator[Finding]:
        if not self.limits:
            return
        for source, st in doc.fields:
            for d in comparisons(st):
                if d.dimension == self.dimension:
                    yield from self.judge(doc, source, st, d)


@dataclass(frozen=True)
class ComparedHeightRule(ComparedRule):
    type: ClassVar[str] = "compared_height"
    dimension: ClassVar[str] = "length"


@dataclass(frozen=True)
class ComparedMassRule(ComparedRule):
    type: ClassVar[str] = "compared_mass"
    dimension: ClassVar[str] = "mass"
