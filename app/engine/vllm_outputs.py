"""What vLLM's `generate` yields, as the engine interface's steps (app/engine/base.py): token
deltas with OpenAI-style logprobs, and the one output that asks for a request to be sent again."""
from __future__ import annotations

from app.engine.base import ChoiceDelta, EngineStep, TokenLogprob

# Tokens masked out (structured outputs) have logprob -inf, which JSON cannot carry; OpenAI
# reports such values as -9999.0.
_FLOOR = -9999.0


def _finite(x: float) -> float:
    return x if x > _FLOOR else _FLOOR


def logprobs(out, tokenizer) -> list[TokenLogprob] | None:
    if out.logprobs is None:
        return None
    result = []
    for tid, entry in zip(out.token_ids, out.logprobs):
        chosen = entry.get(tid)
        top = sorted(entry.values(), key=lambda lp: lp.rank or 0)
        result.append(TokenLogprob(
            token=chosen.decoded_token if chosen else tokenizer.decode([tid]),
            logprob=_finite(chosen.logprob if chosen else _FLOOR),
            top=[(lp.decoded_token or "", _finite(lp.logprob)) for lp in top]))
    return result


def engine_step(ro, tokenizer) -> EngineStep:
    """One of vLLM's RequestOutputs (delta mode) as a step."""
    return EngineStep(deltas=[
        ChoiceDelta(index=o.index, text=o.text, new_tokens=len(o.token_ids),
                    finish_reason=o.finish_reason, stop_reason=o.stop_reason,
                    logprobs=logprobs(o, tokenizer)) for o in ro.outputs],
        prompt_tokens=len(ro.prompt_token_ids or ()))


def media_lost(ro) -> bool:
    """(Of a request's first output.) vLLM's answer when its engine core misses a clip that its API side thinks was sent
    (P0/P1 multimodal cache drift: the request that carried it was cancelled mid-send): the
    request ends at once, with an error and no token, and vLLM (0.32) drops the stale entry so
    that the same request sent again carries the media."""
    return bool(getattr(ro, "finished", False) and ro.outputs) and all(
        o.finish_reason == "error" and not o.token_ids for o in ro.outputs)
