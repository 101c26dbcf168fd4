"""The optional model critic: the served model, shown the request's own video again, is asked
whether the answer holds up physically; a "yes, there are anomalies" becomes a guardrail finding.

The prompt is Cosmos-Reason1's video critic (`CRITIC_SYSTEM_PROMPT`, verbatim). That critic
judges a video; ours asks the same template about an answer to a question on the video, so the
user turn is ours (`CRITIC_USER_PROMPT`) and the template's Yes/No keeps its meaning: "Yes" =
anomalies = the answer is implausible.

One critic ask is one more engine request per checked choice: the same model or LoRA adapter,
greedy, at most `max_tokens`, with the frames the request already ingested (the same
`VideoClip` objects: nothing is fetched or decoded again). It runs inside the request: under its
deadline, on its admission slot, cancelled (and its engine request aborted) when the client
goes. A critic that cannot answer never fails the answer: an engine error or the deadline gives
no finding, a log line and a `cosmos_guardrail_critic_verdicts_total` count.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from app import context as request_context
from app import metrics
from app.engine.base import Engine, EngineInput, SamplingOptions
from app.errors import DeadlineExceededError, ShuttingDownError
from app.guardrail.rules import Finding, Severity
from app.reasoning import ParsedOutput, parse_reasoning

log = logging.getLogger(__name__)

RULE_ID = "critic.implausible"
# Label values of cosmos_guardrail_critic_verdicts_total{verdict}: the critic's own three, then
# why it gave none (`skipped`: nothing to judge, no room in the context, or the rules already
# block; `timeout`: the request's deadline passed; `error`: the engine failed).
CriticVerdict = Literal["plausible", "implausible", "unknown", "skipped", "timeout", "error"]
CRITIC_VERDICTS: tuple[CriticVerdict, ...] = ("plausible", "implausible", "unknown", "skipped",
                                              "timeout", "error")

# Copied verbatim from NVIDIA's Cosmos-Reason1 repository, github.com/nvidia-cosmos/cosmos-reason1,
# prompts/video_critic.yaml (`system_prompt`; commit 1e8a3b7, used by
# examples/video_critic/video_critic.py). Copyright (c) 2025 NVIDIA CORPORATION & AFFILIATES,
# Apache License 2.0 (http://www.apache.org/licenses/LICENSE-2.0).
CRITIC_SYSTEM_PROMPT = """\
You are a helpful video analyzer. The goal is to identify artifacts and anomalies in the video.
Analyze the video carefully and answer the question according to the following template:

<think>
<overview>
[Brief description of the video.]
</overview>

<component name="Component 1 Name">
<analysis>
[Analysis or reasoning about this component.]
</analysis>
<anomaly>Yes | No</anomaly>
</component>

<component name="Component 2 Name">
<analysis>
[Analysis or reasoning about this component.]
</analysis>
<anomaly>Yes | No</anomaly>
</component>

<!-- Add more components as needed -->
</think>

<answer>
[Whether the video contains anomalies or artifacts. Answer "Yes" or "No".]
</answer>
"""
# The repository's user prompt is "Does the video contain any anomalies or artifacts?"; ours
# (cosmos-serve's) asks the same of the answer, in the template's terms.
CRITIC_USER_PROMPT = """\
A question about this video was answered as follows.

Question: {question}

Answer: {answer}

Does the answer contain any anomalies: statements that are physically implausible, or that the \
video contradicts?"""
MIN_TOKENS = 16  # below this the template cannot reach its <answer>: not worth asking
_TEXT_CHARS = 2000  # of the question and of the answer shown to the critic
_REASON_CHARS = 200
_YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)
_COMPONENT = re.compile(r"<component\b(?:[^>]*?\bname=\"([^\"]*)\")?[^>]*>(.*?)</component>",
                        re.IGNORECASE | re.DOTALL)
_ANALYSIS = re.compile(r"<analysis>(.*?)(?:</analysis>|$)", re.IGNORECASE | re.DOTALL)
_ANOMALY_YES = re.compile(r"<anomaly>\s*yes\b", re.IGNORECASE)
_OVERVIEW = re.compile(r"<overview>(.*?)(?:</overview>|$)", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]{0,80}>")


@dataclass(frozen=True)
class CriticContext:
    """What a request gives its critic: its engine input (frames, model, adapter), the user's
    question, its vision tokens, and `within`, which runs an await under its deadline."""
    inp: EngineInput
    question: str
    vision_tokens: int
    within: Callable[[Awaitable[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class CriticResult:
    verdict: CriticVerdict
    reason: str = ""  # the critic's own words, shortened
    finding: Finding | None = None
    seconds: float = 0.0


def _short(text: str, limit: int) -> str:
    text = " ".join(_TAGS.sub(" ", text).split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


def parse_verdict(text: str) -> tuple[CriticVerdict, str]:
    """The critic's verdict and short reason from its raw output. Only a Yes or No opening its
    answer counts; anything else (no answer, cut off, other words) is `unknown`."""
    parsed = parse_reasoning(text)
    match = _YES_NO.match(parsed.answer or "")
    if match is None:
        return "unknown", ""
    verdict: CriticVerdict = "implausible" if match.group(1).lower() == "yes" else "plausible"
    think = parsed.reasoning or ""
    flagged = [(name, body) for name, body in _COMPONENT.findall(think)
               if _ANOMALY_YES.search(body)] if verdict == "implausible" else []
    if flagged:
        name, body = flagged[0]
        analysis = _ANALYSIS.search(body)
        reason = f"{name}: " * bool(name) + (analysis.group(1) if analysis else body)
    else:
        overview = _OVERVIEW.search(think)
        reason = overview.group(1) if overview else think or parsed.answer or ""
    return verdict, _short(reason, _REASON_CHARS)


class ModelCritic:
    """The server's critic: which engine, how many tokens, what severity its finding has."""

    def __init__(self, engine: Engine, max_tokens: int, severity: Severity):
        self.engine, self.max_tokens, self.severity = engine, max_tokens, severity

    def request(self, ctx: CriticContext, answer: str, index: int) -> EngineInput | None:
        """The critic's engine request for one choice, on the request's own frames; None if
        there is nothing to judge or no room left in the context."""
        inp = ctx.inp
        if not answer.strip() or not (inp.videos or inp.images):
            return None
        media = [{"type": "video"} for _ in inp.videos] + [{"type": "image"} for _ in inp.images]
        text = CRITIC_USER_PROMPT.format(question=_short(ctx.question, _TEXT_CHARS) or "(none)",
                                         answer=_short(answer, _TEXT_CHARS))
        prompt = self.engine.render_prompt([
            {"role": "system", "content": CRITIC_SYSTEM_PROMPT},
            {"role": "user", "content": [*media, {"type": "text", "text": text}]}])
        # Placeholders count one token each in the text; the engine expands them (prompt.py).
        tokens = self.engine.count_tokens(prompt) - len(media) + ctx.vision_tokens
        room = self.max_tokens
        if self.engine.max_model_len:
            room = min(room, self.engine.max_model_len - tokens)
        if room < MIN_TOKENS:
            return None
        # Greedy, with the repository's repetition penalty (greedy decoding alone loops).
        sampling = SamplingOptions(max_tokens=room, temperature=0.0, top_p=1.0, seed=0,
                                   repetition_penalty=1.05)
        return EngineInput(request_id=f"{inp.request_id}-critic-{index}", prompt=prompt,
                           sampling=sampling, videos=inp.videos, images=inp.images,
                           lora=inp.lora)

    async def judge(self, ctx: CriticContext, parsed: ParsedOutput, index: int) -> CriticResult:
        """Ask the critic about choice `index`'s answer, each engine step under the request's
        deadline. Never raises for the critic's own failures; a cancellation (the client left)
        or a shutdown propagates, after the critic's engine request is aborted."""
        t0 = time.perf_counter()
        ask = self.request(ctx, parsed.answer or "", index)
        if ask is None:
            return self._done(CriticResult("skipped"), t0)
        text, finished = "", False
        gen = self.engine.generate(ask)
        metrics.ENGINE_REQUESTS_RUNNING.inc()
        try:
            while True:
                try:
                    step = await ctx.within(gen.__anext__())
                except StopAsyncIteration:
                    break
                text += "".join(d.text for d in step.deltas if d.index == 0)
            finished = True
        except DeadlineExceededError:
            log.warning("model critic of %s stopped by the request's deadline", ask.request_id)
            metrics.ENGINE_ABORTS.labels("deadline").inc()
            return self._done(CriticResult("timeout"), t0)
        except ShuttingDownError:
            metrics.ENGINE_ABORTS.labels("shutdown").inc()
            raise
        except Exception as exc:  # noqa: BLE001 - the answer stands without the critic
            log.warning("model critic of %s failed: %s: %s", ask.request_id,
                        type(exc).__name__, exc)
            metrics.ENGINE_ABORTS.labels("error").inc()
            return self._done(CriticResult("error"), t0)
        except BaseException:  # cancelled: the client left
            metrics.ENGINE_ABORTS.labels("client_gone").inc()
            raise
        finally:
            metrics.ENGINE_REQUESTS_RUNNING.dec()
            await gen.aclose()
            if not finished:
                await asyncio.shield(self.engine.abort(ask.request_id))
        verdict, reason = parse_verdict(text)
        finding = None
        if verdict == "implausible":
            end = parsed.length
            said = f": \"{reason}\"" if reason else ""
            finding = Finding(RULE_ID, self.severity,
                              f"the model critic found the answer implausible{said}",
                              parsed.answer_span or (end, end), "answer")
        return self._done(CriticResult(verdict, reason, finding), t0)

    def skip(self) -> None:
        """Counted when the critic is not asked at all (the rules already block)."""
        self._done(CriticResult("skipped"), time.perf_counter())

    @staticmethod
    def _done(result: CriticResult, t0: float) -> CriticResult:
        seconds = time.perf_counter() - t0
        if result.verdict != "skipped":  # the stage's cost: asks that reached the engine
            metrics.GUARDRAIL_CRITIC_SECONDS.observe(seconds)
            request_context.note(critic=result.verdict, critic_s=round(seconds, 3))
        metrics.GUARDRAIL_CRITIC_VERDICTS.labels(result.verdict).inc()
        return CriticResult(result.verdict, result.reason, result.finding, seconds)

