"""Per-choice post-processing: split `<think>`/`<answer>`, then run the guardrail.

One object per choice serves both modes. Streaming: reasoning deltas pass through at once; the
answer passes through too unless a `block` policy is active, in which case it is held until the
guardrail has seen the whole answer (a blocked answer must never reach the client).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from app import metrics
from app.api.protocol import GuardrailFindingOut, GuardrailReport
from app.guardrail import Guardrail, GuardrailContext
from app.reasoning import StreamingReasoningParser


@dataclass
class Final:
    reasoning: str | None
    content: str | None
    finish_reason: str | None
    guardrail: GuardrailReport | None


class GuardrailRunner:
    """The server's guardrail plus the request's context; None-safe when policies are all off."""

    def __init__(self, guardrail: Guardrail | None, context: GuardrailContext):
        self.guardrail = guardrail
        self.context = context

    @property
    def may_block(self) -> bool:
        return self.guardrail is not None and self.guardrail.may_block

    def check(self, parsed, truncated: bool) -> GuardrailReport | None:
        if self.guardrail is None:
            return None
        t0 = time.perf_counter()
        ctx = self.context.with_truncated(truncated)
        result = self.guardrail.check(parsed, ctx)
        metrics.GUARDRAIL_SECONDS.observe(time.perf_counter() - t0)
        metrics.GUARDRAIL_VERDICTS.labels(result.verdict).inc()
        for f in result.findings:
            metrics.GUARDRAIL_FINDINGS.labels(f.rule_id, f.severity).inc()
        return GuardrailReport(verdict=result.verdict, findings=[
            GuardrailFindingOut(rule_id=f.rule_id, severity=f.severity, message=f.message,
                                span=list(f.span), source=f.source) for f in result.findings])


class ChoicePostprocessor:
    """One choice's text, parsed once by the streaming parser in both modes: a complete
    response is one delta followed by `finish`, so whole and streamed answers agree by
    construction."""

    def __init__(self, raw: bool, runner: GuardrailRunner, expect_reasoning: bool = True):
        # Whole and streamed parses must agree on whether untagged leading text may still
        # turn out to be reasoning (held back) or is the answer (sent at once).
        self.raw = raw
        self.runner = runner
        self.text = ""
        self._stream = StreamingReasoningParser(expect_reasoning=expect_reasoning)
        self._held: list[str] = []
        self._hold = runner.may_block and not raw

    def complete(self, text: str, finish_reason: str | None) -> Final:
        self.feed(text)
        return self.finish(finish_reason)[1]

    def feed(self, delta: str) -> list[tuple[str, str]]:
        """(field, text) pairs to send now; field is `reasoning` or `content`."""
        self.text += delta
        if self.raw:
            return [("content", delta)] if delta else []
        return self._route(self._stream.feed(delta))

    def finish(self, finish_reason: str | None) -> tuple[list[tuple[str, str]], Final]:
        """Flush what was held back; the final verdict rides on the last chunk."""
        if self.raw:
            return [], Final(None, self.text, finish_reason, None)
        truncated = finish_reason == "length"
        out = self._route(self._stream.finish(truncated=truncated))
        parsed = self._stream.result
        metrics.REASONING_PARSE.labels(parsed.outcome).inc()
        report = self.runner.check(parsed, truncated)
        final = Final(parsed.reasoning, parsed.answer, finish_reason, report)
        if report is not None and report.verdict == "block":
            final = Final(parsed.reasoning, None, "content_filter", report)
        elif self._hold and self._held:
            out.append(("content", "".join(self._held)))
        return out, final

    def _route(self, deltas) -> list[tuple[str, str]]:
        out = []
        for kind, piece in deltas:
            if kind == "content" and self._hold:
                self._held.append(piece)
            else:
                out.append((kind, piece))
        return out
