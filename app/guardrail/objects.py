"""Objects and pronouns in model text: the rule file's `objects` (class -> words or phrases)
compiled into the patterns that find them, and the mentions a quantity's sentence makes.

Mentions are looked for only in the sentences of quantities some rule could flag (scanned.py),
never over the whole text; the finders answer "could one of these classes be named here?" more
cheaply than the mentions themselves.
"""
from __future__ import annotations

import re
from typing import NamedTuple

# The thing compared with is not the thing measured: "4 m tall compared with the shelving".
# So is what something stands above ("3 m tall, well above the shelving"), and what comes
# along ("120 kg with its driver").
_COMPARED = re.compile(r"(?:compared (?:with|to)|than|relative to|versus|vs\.?|above)\s+"
                       r"(?:the\s+|an?\s+)?(?:[0-9][0-9.,]*\s*[a-z]{1,6}\s+)?$")  # "than the 2.1 m bar"
_WITH = re.compile(r"\bwith\s+(?:its|his|her|their)\s+(?:[a-z-]+\s+)?$")
_COMPARING = re.compile(r"compared|than|relative|versus|vs|above")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
# \b(?:it|its|they|their|them|he|his|him|she|her|who|whom|whose)\b, with each word's first
# letter ahead of its look-behind so that sre can skip to the next i, t, h, s or w.
PRONOUN_ALTERNATIVES = (r"i(?<!\wi)ts?\b|t(?<!\wt)he(?:y|ir|m)\b|h(?<!\wh)(?:e|is|im|er)\b|"
                        r"s(?<!\ws)he\b|w(?<!\ww)ho(?:m|se)?\b")
PRONOUNS = frozenset(("it", "its", "they", "their", "them", "he", "his", "him", "she", "her",
                      "who", "whom", "whose"))
# The pronouns a finder looks for: those that may open a sentence about someone or something
# named before it ("who" names someone in its own sentence: scanned.py looks for it apart).
_FINDER_PRONOUNS = {"i": r"(?<!\wi)ts?\b", "t": r"(?<!\wt)he(?:y|ir|m)\b",
                    "h": r"(?<!\wh)(?:e|is|er)\b", "s": r"(?<!\ws)he\b"}  # by first letter
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
# So is what a mover carries along ("the winger carries the ball"): it moves as the mover does.
_OBLIQUE = re.compile(r"\b(?:behind|from|out of|around|carr(?:y|ies|ied|ying)|dribbl(?:e|es|ed|ing)|"
                      r"push(?:es|ed|ing)?|pull(?:s|ed|ing)?|drag(?:s|ged|ging)?)\s+(?:(?:the|a|an|"
                      r"its|their|his|her|this|that|our)\s+)?(?:[a-z-]+\s+)?$")
_NEXT_WORD = re.compile(r"['\u2019]s?\s+(?:[0-9][0-9.,]*\s*[^\s]*\s+)?([a-z]+)")
_new_tuple = tuple.__new__  # a NamedTuple's own __new__ is Python code, 4x slower


class Mention(NamedTuple):
    pos: int
    cls: str
    words: str
    compared: bool  # the object is what something is compared with
    possessor: bool = False  # "the striker's shot": the shot moves, the striker may not
    oblique: bool = False  # after a preposition of place: "runs out from behind the bus"


def _alternation(literals: list[str], escape=re.escape,
                 after: dict[str, str] | None = None) -> str:
    """Literals (longest first) as a trie of alternations, so sre tests one branch per distinct
    next character instead of every literal sharing a first character (the object words of a
    sentence's mentions: ~25% cheaper). At each node the longer continuations are tried before
    ending there, so the literal matched is the one the longest-first alternation matched: all
    literals matching at a position lie on one path of the trie. `escape` works per character.
    `after`: first character -> a pattern for the rest, tried after the literals opening with
    that character (the finders' pronouns: no separate branch to enter at each word start)."""
    root: dict = {}
    for lit in literals:
        node = root
        for c in lit:
            node = node.setdefault(c, {})
        node[None] = None  # a literal ends here

    def branch(node: dict, extra: str | None = None) -> str:
        alts = [escape(c) + branch(child) for c, child in node.items() if c is not None]
        if None in node:
            alts.append("")  # ending here: after the longer ones (a branch is cheaper than `?`)
        if extra is not None:
            alts.append(extra)
        return alts[0] if len(alts) == 1 else f"(?:{'|'.join(alts)})"

    after = after or {}
    firsts = list(root) + [c for c in after if c not in root]
    return "|".join(escape(c) + branch(root.get(c, {}), after.get(c)) for c in firsts)


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


class Vocabulary:
    """The rule file's `objects` and `people`, compiled."""

    def __init__(self, objects: dict[str, list[str]], people: list[str] | None = None):
        """`people`: the classes whose members are people ("he" and "who" name them, "it" never
        does; the first is the class of a "who" with no one named before it)."""
        for cls, spellings in objects.items():
            if not isinstance(spellings, list) or not all(isinstance(w, str) and w.strip()
                                                         for w in spellings):
                raise ValueError(f"objects: {cls!r}: want a list of words or phrases")
        # Object spellings are words or phrases; "-s" and "-es" plurals come for free. The first
        # class to list a spelling owns it.
        self.object_classes = tuple(objects)
        self.people = tuple(people or ())
        unknown = sorted(set(self.people) - set(objects))
        if unknown:
            raise ValueError(f"people: unknown object classes {unknown}")
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
            # The pronouns after the words that share their first letter: a word of the
            # classes still wins where both could match.
            self._finders[classes] = (re.compile(f"[^a-z0-9](?:{alternatives})"), re.compile(
                f"[^a-z0-9]({_alternation(words, after=_FINDER_PRONOUNS)})"))
        return self._finders[classes]

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
                        "versus" in near or "above" in near) and _COMPARED.search(low, max(0, at - 20), at) is not None
            # "at 550 kg per pallet the cargo is 12 t": a rate's divisor is not what the
            # clause measures.
            if not compared and near.endswith("per "):
                compared = True
            elif not compared and "with" in near:
                compared = _WITH.search(low, max(0, at - 24), at) is not None
            elif compared:
                if comparing is None:
                    comparing = _COMPARING.search(low, start, end) is not None
                compared = comparing
            oblique = ("behind" in near or "from" in near or "out of" in near or "around" in near
                       or "carr" in near or "dribbl" in near or "push" in near or "pull" in near
                       or "drag" in near) and _OBLIQUE.search(low, max(0, at - 32), at) is not None
            out.append(_new_tuple(Mention, (at, classes.get(words) or classes[_normalized(words)],
                                            words, compared, possessor, oblique)))
        return out
