"""Find quantities in model text and the objects each one is said about.

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

_UREG = pint.UnitRegistry()  # slow to build (~0.3 s): once per process

_DIMENSIONS = {"[length] / [time]": "speed", "[length] / [time] ** 2": "acceleration",
               "[length]": "length", "[time]": "time", "dimensionless": "ratio", "[mass]": "mass"}
# The thing compared with is not the thing measured: "4 m tall compared with the shelving".
_COMPARED = re.compile(r"(?:compared (?:with|to)|than|relative to|versus|vs\.?)\s+(?:the\s+|an?\s+)?$")
_COMPARING = re.compile(r"compared|than|relative|versus|vs")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
# str.lower() looks non-ASCII text up character by character in the Unicode tables (45 µs for a
# 16 k output with a single "²"); Latin-1 text lowers as bytes through the same mapping, which
# keeps every Latin-1 character one Latin-1 character (checked here, not assumed).
_LATIN1 = [chr(b).lower() for b in range(256)]
_LATIN1_LOWER = (bytes(ord(c) for c in _LATIN1)
                 if all(len(c) == 1 and ord(c) < 256 for c in _LATIN1) else None)
# \b(?:it|its|they|their|them|he|his|him|she|her|who|whom|whose)\b, with each word's first
# letter ahead of its look-behind so that sre can skip to the next i, t, h, s or w.
PRONOUN_ALTERNATIVES = (r"i(?<!\wi)ts?\b|t(?<!\wt)he(?:y|ir|m)\b|h(?<!\wh)(?:e|is|im|er)\b|"
                        r"s(?<!\ws)he\b|w(?<!\ww)ho(?:m|se)?\b")
PRONOUNS = frozenset(("it", "its", "they", "their", "them", "he", "his", "him", "she", "her",
                      "who", "whom", "whose"))
# The pronouns a finder looks for: those that may open a sentence about someone or something
# named before it ("who" names someone in its own sentence: scanned.py looks for it apart).
_FINDER_PRONOUNS = r"i(?<!\wi)ts?\b|t(?<!\wt)he(?:y|ir|m)\b|h(?<!\wh)(?:e|is|er)\b|s(?<!\ws)he\b"
# Pronouns that name a person ("he", "who") and one that never does ("it"); "whose" and "they"
# may name either.
PERSONAL = frozenset(("he", "his", "him", "she", "her", "who", "whom"))
IMPERSONAL = frozenset(("it", "its"))
# "Men's downhill", "the women's final": a category of event, not the people in it.
_CATEGORY = frozenset(("men", "women", "boys", "girls", "ladies", "children", "kids", "juniors"))
# After "'s", the words that keep the owner as what is measured: "the car's speed", "the man's
# height"; any other noun ("the striker's shot", "the bowler's delivery") is what is.
_OWN = frozenset("speed speeds velocity pace acceleration deceleration braking top average peak "
                 "max maximum mean running walking sprint sprinting stride height weight mass body "
                 "own estimated current stopping travel initial final cruising ground rate motion "
                 "movement momentum progress".split())
# Where a mover comes from or hides, before a mention (and its article and adjective): "runs out
# from behind the bus". ("In front of the car at 50 km/h" is ambiguous: not counted.)
_OBLIQUE = re.compile(r"\b(?:behind|from|out of|around)\s+(?:(?:the|a|an|its|their|his|her|this|"
                      r"that|our)\s+)?(?:[a-z-]+\s+)?$")
_NEXT_WORD = re.compile(r"['\u2019]s?\s+(?:[0-9][0-9.,]*\s*[^\s]*\s+)?([a-z]+)")
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


class Mention(NamedTuple):
    pos: int
    cls: str
    words: str
    compared: bool  # the object is what something is compared with
    possessor: bool = False  # "the striker's shot": the shot moves, the striker may not
    oblique: bool = False  # after a preposition of place: "runs out from behind the bus"


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


def _alternation(literals: list[str], escape=re.escape) -> str:
    """Literals grouped by first character, so sre tests ~1 branch per position instead of all
    of them; order within a group is kept, so earlier (longer) literals still win."""
    buckets: dict[str, list[str]] = {}
    for lit in literals:
        buckets.setdefault(lit[0], []).append(escape(lit[1:]))
    return "|".join(f"{re.escape(c)}(?:{'|'.join(rest)})" for c, rest in buckets.items())


def _cover(forms: list[str]) -> list[str]:
    """Few words such that each form has a word starting with one of them, picked greedily (the
    one that starts words of most forms first: "robot" for "mobile robot", "robot carts"...),
    avoiding words as common as "by" (of "passer-by") where another one will do."""
    left, words = [f.split(" ") for f in forms], []
    candidates = sorted({w for f in left for w in f})
    while left:
        words.append(max(candidates, key=lambda c: (
            len(c) > 2, sum(any(w.startswith(c) for w in f) for f in left), len(c))))
        left = [f for f in left if not any(w.startswith(words[-1]) for w in f)]
    return words


def _normalized(spelling: str) -> str:
    """'End-Effector' -> 'end effector': how object spellings are compared."""
    return " ".join(re.split(r"[\s\-]+", spelling.lower().strip()))


def _phrase_pattern(text: str) -> str:
    return r"[\s\-]".join(re.escape(w) for w in text.split(" "))


class Scanner:
    """Compiled from the rule file's `units` and `objects` sections."""

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
        for cls, spellings in objects.items():
            if not isinstance(spellings, list) or not all(isinstance(w, str) and w.strip()
                                                         for w in spellings):
                raise ValueError(f"objects: {cls!r}: want a list of words or phrases")
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
        # Object spellings are words or phrases; "-s" and "-es" plurals come for free. The first
        # class to list a spelling owns it.
        self.object_classes = tuple(objects)
        self.people = tuple(people or ())
        unknown = sorted(set(self.people) - set(objects))
        if unknown:
            raise ValueError(f"people: unknown object classes {unknown}")
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
        self.object_forms = frozenset(_normalized(sp) for sps in objects.values() for sp in sps)
        self._classes: dict[str, str] = {}
        for cls, spellings in objects.items():
            for spelling in spellings:
                base = _normalized(spelling)
                for form in (base, base + "s", base + "es"):
                    self._classes.setdefault(form, cls)
        bases = sorted({_normalized(sp) for sps in objects.values() for sp in sps},
                       key=len, reverse=True)
        words = rf"(?:{_alternation(bases, escape=_phrase_pattern)})(?:e?s)?(?![a-z0-9])"
        self._object_re = re.compile(rf"(?<![a-z0-9])({words})")
        # Same matches, 3x faster: opening with the character before the word lets sre skip
        # from word start to word start. It consumes that character, which would hide a mention
        # right after one ending in punctuation, so it needs every spelling to end in [a-z0-9].
        self._object_after_re = (re.compile(rf"[^a-z0-9]({words})")
                                 if bases and all(b[-1] in _ALNUM for b in bases) else None)
        # Each word of a mention starts after a character other than [a-z0-9]: where none of a
        # class's words starts, nothing can be said about one of its objects.
        self._class_words = {cls: _cover([f for f, c in self._classes.items() if c == cls])
                             for cls in objects}
        self._finders: dict[frozenset[str], tuple[re.Pattern[str], re.Pattern[str]]] = {}

    def class_of(self, word: str) -> str | None:
        """The object class a single word names, if any ("car", "forklifts")."""
        return self._classes.get(word)

    def finders(self, classes: frozenset[str]) -> tuple[re.Pattern[str], re.Pattern[str]]:
        """Two patterns that match from the character before a word (so that sre skips from one
        word start to the next) and are found wherever a mention of one of `classes` is (and
        elsewhere: "arm" in "armed"): 3x cheaper than the mentions themselves. The second also
        finds pronouns (group 1 is the word)."""
        if classes not in self._finders:
            words = sorted({w for c in classes for w in self._class_words[c]}, key=len, reverse=True)
            alternatives = _alternation(words) if words else "(?!)"
            self._finders[classes] = (re.compile(f"[^a-z0-9](?:{alternatives})"), re.compile(
                f"[^a-z0-9]((?:{alternatives})|{_FINDER_PRONOUNS})"))
        return self._finders[classes]

    def quantities(self, low: str, bounds: Callable[[int, int], tuple[int, int]],
                   wanted: Wanted | None = None, raw: list[Raw] | None = None) -> list[Quantity]:
        """Quantities in `low`; `bounds(start, end)` gives a quantity's sentence. With `wanted`,
        only those some rule could flag: of a listed dimension and outside its (lo, hi). `raw`,
        if given, receives every speed, time and length matched, flaggable or not."""
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
        """unit -> (factor, dimension, spec if the sentence decides, lo, hi, only negatives):
        a value * factor within [lo, hi] is one no rule could flag; with lo = 0 and no hi,
        a value without a minus sign is such a value before it is even read."""
        key = None if wanted is None else frozenset(wanted.items())
        if key not in self._tables:
            if len(self._tables) > 64:
                self._tables.clear()
            table = self._tables[key] = {}
            for k, u in self.units.items():
                lo, hi = _keep_outside(wanted, u.dimension)
                table[k] = (u.factor, u.dimension, u if u.near else None, lo, hi,
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
                alt, alt_dim = spec.otherwise
                if lo <= value * factor <= hi and not _flaggable(wanted, alt_dim, value * alt):
                    continue
                s, e = bounds(start, end)
                if not spec.near.search(low, s, e) or spec.unless.search(low, s, e):
                    factor, dim = alt, alt_dim
                    lo, hi = _keep_outside(wanted, dim)
            value *= factor
            if not lo <= value <= hi:
                append(_new_tuple(Quantity, (value, dim, start, end, False)))
        return out

    def mentions(self, low: str, start: int, end: int) -> list[Mention]:
        """Object mentions in low[start:end], in order; a phrase hides the words inside it
        ("reach truck" is a forklift, not a truck)."""
        if start and self._object_after_re is not None:
            found = [(m.start(1), m.group(1))
                     for m in self._object_after_re.finditer(low, start - 1, end)]
        else:
            found = [(m.start(), m.group()) for m in self._object_re.finditer(low, start, end)]
        classes, comparing, out = self._classes, None, []
        for at, words in found:
            end = at + len(words)
            possessor = False
            if end < len(low) and low[end] in "'\u2019":
                if words in _CATEGORY:
                    continue
                w = _NEXT_WORD.match(low, end)
                possessor = w is not None and w.group(1) not in _OWN
            # Compared: "than the" & co. right before it, and one of those words in the window.
            # The short look behind is the cheaper test, so it goes first; `in` tests on the
            # few characters before spare most regex searches.
            near = low[max(0, at - 32):at]
            compared = ("tha" in near or "compar" in near or "relativ" in near or "vs" in near or
                        "versus" in near) and _COMPARED.search(low, max(0, at - 20), at) is not None
            if compared:
                if comparing is None:
                    comparing = _COMPARING.search(low, start, end) is not None
                compared = comparing
            oblique = ("behind" in near or "from" in near or "out of" in near or
                       "around" in near) and _OBLIQUE.search(low, max(0, at - 32), at) is not None
            out.append(_new_tuple(Mention, (at, classes.get(words) or classes[_normalized(words)],
                                            words, compared, possessor, oblique)))
        return out
