"""Find quantities in model text (the objects they are said about: objects.py, scanned.py).

Cost matters (the guardrail runs on every response, and a 4,096-token output is 16 k characters),
so the whole text is only ever walked by C code: one regex pass finds the quantities, on a copy
whose digits are all "0", so that sre jumps from one digit to the next instead of trying the
pattern at every position. Quantities no rule could flag are dropped in that loop, before the
costly part (`near` tests, sentences, objects: see scanned.py). Units are converted with
factors pint computed at load time.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Tuple

import pint

from app.guardrail.objects import Vocabulary, _alternation
from app.guardrail.prefilter import windowed

_UREG = pint.UnitRegistry()  # slow to build (~0.3 s): once per process

_DIMENSIONS = {"[length] / [time]": "speed", "[length] / [time] ** 2": "acceleration",
               "[length]": "length", "[time]": "time", "dimensionless": "ratio", "[mass]": "mass"}
# str.lower() looks non-ASCII text up character by character in the Unicode tables (45 µs for a
# 16 k output with a single "²"); Latin-1 text lowers as bytes through the same mapping, which
# keeps every Latin-1 character one Latin-1 character (checked here, not assumed).
_LATIN1 = [chr(b).lower() for b in range(256)]
_LATIN1_LOWER = (bytes(ord(c) for c in _LATIN1)
                 if all(len(c) == 1 and ord(c) < 256 for c in _LATIN1) else None)
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_ZEROS_STR = str.maketrans("123456789", "000000000")
_new_tuple = tuple.__new__  # a NamedTuple's own __new__ is Python code, 4x slower
# Per dimension, the (lo, hi) inside which no active rule would flag a quantity.
Wanted = Mapping[str, Tuple[float, float]]
# Dimensions derived kinematics combines (kinematics.py): their every match is kept aside, raw.
KINEMATIC = frozenset(("speed", "time", "length"))
# "minus 3 s", "negative 4 m": a sign in words (the rare case, looked for only where the word is).
_SIGN_WORD = re.compile(r"\b(?:minus|negative)\s+(?=[0-9])")


class Raw(NamedTuple):
    """A speed, time or length as matched, for kinematics.py: its value is read when needed."""
    start: int
    num_end: int
    end: int
    factor: float
    dimension: str


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


def lower(text: str) -> str:
    """text.lower(), faster on Latin-1 text."""
    if _LATIN1_LOWER is None or text.isascii():
        return text.lower()
    try:
        return text.encode("latin-1").translate(_LATIN1_LOWER).decode("latin-1")
    except UnicodeEncodeError:
        return text.lower()


def _keep_outside(wanted: Wanted | None, dim: str) -> tuple[float, float]:
    """(lo, hi): values of `dim` within it are dropped; (inf, -inf) keeps all."""
    if wanted is None:
        return math.inf, -math.inf
    return wanted.get(dim, (-math.inf, math.inf))


def _flaggable(wanted: Wanted | None, dim: str, value: float) -> bool:
    lo, hi = _keep_outside(wanted, dim)
    return not lo <= value <= hi


class Scanner(Vocabulary):
    """Compiled from the rule file's `units`, `objects`, `people` and `not_claims` sections."""

    def __init__(self, units: dict[str, Any], objects: dict[str, list[str]],
                 people: list[str] | None = None, not_claims: dict[str, str] | None = None):
        """`people`: the classes whose members are people ("he" and "who" name them, "it" never
        does; the first is the class of a "who" with no one named before it). `not_claims`:
        `clause` and `sentence` patterns that make a quantity something other than a claim
        about an object (see default_rules.yaml)."""
        self.units: dict[str, UnitSpec] = {}
        for spelling, spec in units.items():
            try:
                if isinstance(spec, str):
                    self.units[str(spelling).lower()] = UnitSpec(*to_si(spec))
                else:
                    self.units[str(spelling).lower()] = UnitSpec(
                        *to_si(spec["unit"]), near=re.compile(spec["near"]),
                        unless=re.compile(spec.get("unless", "(?!)")),
                        otherwise=to_si(spec["otherwise"]))
            except KeyError as e:
                raise ValueError(f"units: {spelling!r}: missing key {e}") from e
            except Exception as e:  # noqa: BLE001 - pint's errors are of many kinds
                raise ValueError(f"units: {spelling!r}: {e}") from e
        super().__init__(objects, people)
        # A number with a unit or an m:ss clock; bare numbers fail inside the regex, which is
        # far cheaper than in Python. Possessive, so a bare "2024" is tried once, not once per
        # digit it could give back; giving back could only help a unit that starts like a
        # number's tail. "D D*", not "D+": sre skips ahead to a possible start only when the
        # pattern opens with a plain character class or literal.
        plus = "" if any(u[:1] in "0123456789.," for u in self.units) else "+"
        number = (f"({{d}}{{d}}*{plus}(?:,{{d}}{{{{3}}}})*{plus}(?:\\.{{d}}+{plus})?{plus})"
                  "(?:((?::{d}{d}){{1,2}}(?:\\.{d}+)?)|[ \xa0]?-?({units})(?![a-z{ds}\xb2^/]))")
        order = sorted(self.units, key=len, reverse=True)
        self._number_re = re.compile(number.format(d="[0-9]", ds="0-9", units=_alternation(order)))
        # The same on Latin-1 text with every digit made "0" (same offsets, and "0" is a literal:
        # sre skips to it 10x faster than to a [0-9]). A unit spelt with digits then matches
        # any digits; the loop looks every unit up as written, and falls back if one is not.
        zeros = [u.translate(_ZEROS_STR) for u in order]
        try:
            self._zeros_re: re.Pattern[bytes] | None = re.compile(number.format(
                d="0", ds="0", units=_alternation(zeros)).encode("latin-1"))
        except UnicodeEncodeError:
            self._zeros_re = None
        self._tables: dict[frozenset[Any] | None, dict[str, tuple[Any, ...]]] = {}
        not_claims = dict(not_claims or {})
        self.not_claims: dict[str, re.Pattern[str]] = {}
        for scope in ("clause", "sentence"):
            if scope in not_claims:
                try:
                    self.not_claims[scope] = re.compile(not_claims.pop(scope))
                except re.error as e:
                    raise ValueError(f"not_claims: {scope}: {e}") from e
        if not_claims:
            raise ValueError(f"not_claims: unknown keys {sorted(not_claims)}")

    def quantities(self, low: str, bounds: Callable[[int, int], tuple[int, int]],
                   wanted: Wanted | None = None, raw: list[Raw] | None = None) -> list[Quantity]:
        """Quantities in `low`; `bounds(start, end)` gives a quantity's sentence. With `wanted`,
        only those some rule could flag: of a listed dimension and outside its (lo, hi). `raw`,
        if given, receives every speed, time and length matched, flaggable or not."""
        if not self.units:  # a rule file with no units: nothing is a quantity
            return []
        found = None
        if self._zeros_re is not None:
            try:
                data = low.encode("latin-1").translate(_ZEROS)
            except UnicodeEncodeError:
                data = None
            if data is not None:
                found = self._quantities(low, self._zeros_re.finditer(data), bounds, wanted, raw)
        if found is None:
            found = self._quantities(low, self._number_re.finditer(low), bounds, wanted, raw)
        if "minus" in low or "negative" in low:
            found.extend(self._signed(low, bounds, wanted))
        return found  # type: ignore[return-value]

    def _signed(self, low: str, bounds: Callable[[int, int], tuple[int, int]],
                wanted: Wanted | None) -> list[Quantity]:
        """Quantities signed in words ("minus 2 s", "negative 4 m"), spanning the word."""
        out = []
        for w in _SIGN_WORD.finditer(low):
            m = self._number_re.match(low, w.end())
            if m is None or m.group(2) is not None:
                continue
            found = self._quantities(low, iter((m,)), bounds, None)
            for q in found or ():
                if q.value > 0 and _flaggable(wanted, q.dimension, -q.value):
                    out.append(q._replace(value=-q.value, start=w.start()))
        return out

    def _table(self, wanted: Wanted | None) -> dict[str, tuple[Any, ...]]:
        """unit -> (factor, dimension, how the sentence decides, lo, hi, only negatives):
        a value * factor within [lo, hi] is one no rule could flag; with lo = 0 and no hi,
        a value without a minus sign is such a value before it is even read. How the sentence
        decides, for a unit like "g": (near, unless, the other meaning's factor, dimension, lo
        and hi), worked out here rather than once per number."""
        key = None if wanted is None else frozenset(wanted.items())
        if key not in self._tables:
            if len(self._tables) > 64:
                self._tables.clear()
            table = self._tables[key] = {}
            for k, u in self.units.items():
                lo, hi = _keep_outside(wanted, u.dimension)
                decides = None
                if u.near:
                    alt, alt_dim = u.otherwise
                    decides = (windowed(u.near), windowed(u.unless), alt, alt_dim,
                               *_keep_outside(wanted, alt_dim))
                table[k] = (u.factor, u.dimension, decides, lo, hi,
                            not u.near and u.factor > 0 and lo == 0 and hi == math.inf)
        return self._tables[key]

    def _quantities(self, low: str, matches: Iterator[re.Match[Any]],
                    bounds: Callable[[int, int], tuple[int, int]],
                    wanted: Wanted | None, raw: list[Raw] | None = None) -> list[Quantity] | None:
        out: list[Quantity] = []
        append, table = out.append, self._table(wanted)
        if raw is not None:
            raw.clear()  # a fallback scan starts over
            keep = raw.append
        for m in matches:
            (start, end), (_, num_end), (clock_start, clock_end), (unit_start, unit_end) = m.regs
            if clock_start < 0:
                entry = table.get(low[unit_start:unit_end])
                if entry is None:  # a unit spelt with digits, matched on others: see _zeros_re
                    return None  # (checked first: even a match dropped below hides text)
            negative = False
            if start and low[start - 1] != " ":
                before = low[start - 1]
                if before.isalnum() or before in "._":
                    continue  # part of an identifier, a version or a decimal: "a1", "v2.5"
                # A minus after a word character is a hyphen or a range ("2-3 m"), not a sign.
                negative = before in "-\u2212" and not (start > 1 and low[start - 2].isalnum())
            if clock_start < 0:
                factor, dim, spec, lo, hi, only_negative = entry
                if raw is not None and dim in KINEMATIC and not negative:
                    keep((start, num_end, end, factor, dim))  # a Raw; a plain tuple is cheaper
                if only_negative and not negative:
                    continue
            num = low[start:num_end]
            value = float(num.replace(",", "") if "," in num else num)
            if negative:
                value, start = -value, start - 1
            if clock_start >= 0:
                parts = [value, *(float(p) for p in low[clock_start + 1:clock_end].split(":"))]
                seconds = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
                if _flaggable(wanted, "time", seconds):
                    append(Quantity(seconds, "time", start, end, clock=True))
                continue
            if spec is not None:
                # Reading the sentence is the costly part: skip it when neither meaning matters.
                near, unless, alt, alt_dim, alt_lo, alt_hi = spec
                if lo <= value * factor <= hi and alt_lo <= value * alt <= alt_hi:
                    continue
                s, e = bounds(start, end)
                if not near(low, s, e) or unless(low, s, e):
                    factor, dim, lo, hi = alt, alt_dim, alt_lo, alt_hi
            value *= factor
            if not lo <= value <= hi:
                append(_new_tuple(Quantity, (value, dim, start, end, False)))
        return out
