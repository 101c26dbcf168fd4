"""What every rule works with: the request's context, the scanned output, and what a rule returns.

Every rule sees one `Document` (the parsed output, scanned once, plus the request's context) and
yields `Finding`s with spans in the raw model text, so a client can highlight them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable, ClassVar, Iterable, Iterator, Literal

from app.guardrail.choices import answer_letter
from app.guardrail.prefilter import folds_to_ascii, windowed
from app.guardrail.scan import Quantity, Scanner, Wanted, lower
from app.guardrail.scanned import ScannedText
from app.reasoning import ParsedOutput

# "A. 5 km/h" and "(B) 50 km/h": an option's text, up to the next option or line end.
_OPTION = re.compile(r"(?:^|(?<=[\s,;:]))\(?([A-H])[.):][ \t]+([^\n]*?)(?=\s+\(?[A-H][.):]\s|\n|$)")
SCENE = 600  # characters at the start of the reasoning or answer that set the scene
Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
Source = Literal["reasoning", "answer"]


@dataclass(frozen=True)
class GuardrailContext:
    """What the server knows about the request beyond the model's text."""
    duration_s: float | None = None  # the clip's real duration, from ingestion
    choices: list[str] | None = None  # option letters the question offers
    truncated: bool = False  # generation stopped at max_tokens
    question: str | None = None  # the user's question: what a count or a yes/no answer is about

    def with_truncated(self, truncated: bool) -> "GuardrailContext":
        return replace(self, truncated=truncated)


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: Severity
    message: str
    span: tuple[int, int]  # raw model text offsets
    source: Source

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "severity": self.severity, "message": self.message,
                "span": list(self.span), "source": self.source}


class Document:
    def __init__(self, parsed: ParsedOutput, context: GuardrailContext, scanner: Scanner,
                 severities: Iterable[str],
                 wanted: Callable[[ScannedText], Wanted] | None = None, kinematics: bool = True):
        """`severities`: those whose rules run; `wanted`: per field, see `Scanner.quantities`;
        `kinematics`: keep every speed, time and length aside for the derived-kinematics rules."""
        self.parsed, self.context, self.scanner = parsed, context, scanner
        self.severities = frozenset(severities)
        self.active: Callable[[str], bool] = self.severities.__contains__
        self.fields: list[tuple[Source, ScannedText]] = [
            (src, ScannedText(text, scanner, wanted, kinematics)) for src, text in
            (("reasoning", parsed.reasoning), ("answer", parsed.answer)) if text]
        self._whole: dict[int, bool] = {}  # by id(pattern): see ScannedText.sentence_has
        self._unchosen: list[tuple[str, float]] | None = None
        for _, st in self.fields:
            st.whole_has = self.anywhere

    def anywhere(self, pattern: Any) -> bool:
        """Whether `pattern` matches where an output says what the scene is: the question, or
        the opening of the reasoning or of the answer (SCENE characters; searching all of a long
        output would cost more than the rest of the check)."""
        found = self._whole.get(id(pattern))
        if found is None:
            texts = [st.text[:SCENE] for _, st in self.fields] + [
                (self.context.question or "").lower()]
            # IGNORECASE costs sre 3x on lowercased text; see windowed for the needles.
            search = windowed(pattern, any(map(folds_to_ascii, texts)))
            found = self._whole[id(pattern)] = any(search(t, 0, len(t)) for t in texts)
        return found

    def unchosen(self, q: Quantity) -> bool:
        """Whether the quantity is the value of an option the answer does not pick: weighed in
        the reasoning ("250 and 500 km/h are aircraft territory"), not claimed."""
        if self._unchosen is None:
            self._unchosen = []
            given = answer_letter(self.parsed.answer)
            if given is not None and self.context.question:
                for m in _OPTION.finditer(self.context.question):
                    if m.group(1) != given[0]:
                        low = lower(m.group(2))
                        found = self.scanner.quantities(low, lambda s, e, n=len(low): (0, n))
                        self._unchosen.extend((v.dimension, v.value) for v in found)
        return any(dim == q.dimension and abs(v - q.value) <= 0.02 * abs(v)
                   for dim, v in self._unchosen)

    def finding(self, rule: "Rule", source: Source, start: int, end: int, **fmt: Any) -> Finding:
        return Finding(rule.id, rule.severity, rule.message.format(**fmt),
                       self.parsed.raw_span(source, start, end), source)

    def at_end(self, rule: "Rule", **fmt: Any) -> Finding:
        end = self.parsed.length
        return Finding(rule.id, rule.severity, rule.message.format(**fmt), (end, end), "answer")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    message: str
    type: ClassVar[str]

    def check(self, doc: Document) -> Iterator[Finding]:
        raise NotImplementedError

    def wants(self, context: GuardrailContext, active: frozenset[str], st: ScannedText) -> Wanted:
        """Per dimension, the (lo, hi) outside which this rule may flag a quantity of `st`. Only
        quantities some check wants are built: a check that reads them must say so here."""
        return {}
