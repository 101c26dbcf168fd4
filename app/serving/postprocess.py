"""Per-choice post-processing: split `<think>`/`<answer>`, then run the guardrail.

One object per choice serves both modes. Streaming: reasoning deltas pass through at once; the
answer passes through too unless a `block` policy is active, in which case it is held until the
guardrail has seen the whole answer (a blocked answer must never reach the client).

With the model critic on (app/guardrail/critic.py), a choice ends in three steps so the call can
await the critic between them: `close` (parse, run the rules), `criticize` (ask the model,
unless the rules already block), `verdict` (one report of both; the held answer, or none).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from app import metrics
from app.api.protocol import GuardrailFindingOut, GuardrailReport
from app.guardrail import Finding, Guardrail, GuardrailContext, GuardrailResult
from app.guardrail.critic import CriticContext, ModelCritic
from app.reasoning import ParsedOutput, StreamingReasoningParser


@dataclass
class Final:
    reasoning: str | None
    content: str | None
    finish_reason: str | None
    guardrail: GuardrailReport | None


class GuardrailRunner:
    """The server's guardrail plus the request's context; None-safe when policies are all off.
    `critic`: the model critic and what it needs of this request, when it runs."""

    def __init__(self, guardrail: Guardrail | None, context: GuardrailContext,
                 critic: tuple[ModelCritic, CriticContext] | None = None):
        self.guardrail = guardrail
        self.context = context
        self.critic = critic if guardrail is not None else None

    @property
    def may_block(self) -> bool:
        return self.guardrail is not None and self.guardrail.may_block

    def rules(self, parsed: ParsedOutput, truncated: bool) -> GuardrailResult | None:
        if self.guardrail is None:
            return None
        t0 = time.perf_counter()
        result = self.guardrail.check(parsed, self.context.with_truncated(truncated))
        metrics.GUARDRAIL_SECONDS.observe(time.perf_counter() - t0)
        return result

    async def criticize(self, parsed: ParsedOutput, result: GuardrailResult | None,
                        index: int) -> list[Finding]:
        """The critic's findings; it is not asked when the rules already block."""
        if self.critic is None or result is None:
            return []
        critic, ctx = self.critic
        if result.verdict == "block":
            critic.skip()
            return []
        judged = await critic.judge(ctx, parsed, index)
        return [judged.finding] if judged.finding is not None else []

    def report(self, result: GuardrailResult | None,
               extra: Sequence[Finding] = ()) -> GuardrailReport | None:
        """One report of the rules' and the critic's findings, verdict by the same policy."""
        if result is None:
            return None
        findings = sorted([*result.findings, *extra], key=lambda f: f.span)
        taken = {self.guardrail.policy[f.severity] for f in findings}
        verdict = "block" if "block" in taken else "flag" if findings else "pass"
        metrics.GUARDRAIL_VERDICTS.labels(verdict).inc()
        for f in findings:
            metrics.GUARDRAIL_FINDINGS.labels(f.rule_id, f.severity).inc()
        return GuardrailReport(verdict=verdict, findings=[
            GuardrailFindingOut(rule_id=f.rule_id, severity=f.severity, message=f.message,
                                span=list(f.span), source=f.source) for f in findings])

    def check(self, parsed: ParsedOutput, truncated: bool) -> GuardrailReport | None:
        """The rules alone (no critic)."""
        return self.report(self.rules(parsed, truncated))


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
        self.finish_reason: str | None = None
        self.truncated = False
        self.parsed: ParsedOutput | None = None
        self._rules: GuardrailResult | None = None
        self._critic: list[Finding] = []

    @property
    def critiqued(self) -> bool:
        """Whether the model critic will be asked about this choice (see `criticize`)."""
        return not self.raw and self.runner.critic is not None

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
        """Flush what was held back; the final verdict rides on the last chunk (no critic)."""
        out = self.close(finish_reason)
        held, final = self.verdict()
        return out + held, final

    def close(self, finish_reason: str | None) -> list[tuple[str, str]]:
        """End of the text: parse it, run the rules; the pieces that may go out now."""
        self.finish_reason = finish_reason
        if self.raw:
            return []
        self.truncated = finish_reason == "length"
        out = self._route(self._stream.finish(truncated=self.truncated))
        self.parsed = self._stream.result
        metrics.REASONING_PARSE.labels(self.parsed.outcome).inc()
        self._rules = self.runner.rules(self.parsed, self.truncated)
        return out

    async def criticize(self, index: int) -> None:
        """Between `close` and `verdict`: the model critic's findings, if it runs."""
        if self.critiqued:
            self._critic = await self.runner.criticize(self.parsed, self._rules, index)

    def verdict(self) -> tuple[list[tuple[str, str]], Final]:
        """The held answer (unless blocked) and the final, with one report of everything."""
        if self.raw:
            return [], Final(None, self.text, self.finish_reason, None)
        parsed = self.parsed
        report = self.runner.report(self._rules, self._critic)
        if report is not None and report.verdict == "block":
            return [], Final(parsed.reasoning, None, "content_filter", report)
        final = Final(parsed.reasoning, parsed.answer, self.finish_reason, report)
        return ([("content", "".join(self._held))] if self._hold and self._held else []), final

    def _route(self, deltas) -> list[tuple[str, str]]:
        out = []
        for kind, piece in deltas:
            if kind == "content" and self._hold:
                self._held.append(piece)
            else:
                out.append((kind, piece))
        return out
