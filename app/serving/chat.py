"""The chat service: validation → ingestion → engine → parser → guardrail, knowing no HTTP.

`ChatService.prepare` runs everything that can reject a request (model name, admission, media,
budgets, context length) and returns a `ChatCall`; nothing has been sent yet, so a rejected
request gets a plain error status. The call then runs once, whole (`complete`) or streamed
(`stream`, app/serving/call.py). Either way it owns its admission slot and releases it when it
ends, and an engine request it leaves unfinished (client gone, deadline passed, error) is aborted.

Every request runs under a `Deadline` (app/serving/deadline.py) from `prepare` to its last token;
`stop_all` ends those still running when a shutdown's drain window closes.
"""
from __future__ import annotations

import functools
import logging
import time
import uuid

from app import context as request_context
from app import metrics
from app.api.protocol import ChatCompletionRequest, IngestedMedia
from app.config import Settings
from app.engine.base import Engine, EngineInput
from app.errors import (DeadlineExceededError, EngineUnavailableError, InvalidRequestError,
                        ModelNotFoundError, NotReadyError, ShuttingDownError)
from app.guardrail import Guardrail, GuardrailContext, extract_choices
from app.guardrail.critic import CriticContext, ModelCritic
from app.ingest import VideoIngestor
from app.profiles.resolve import Resolved
from app.serving.admission import Limiter
from app.serving.call import ChatCall, UsageCount
from app.serving.deadline import Deadline
from app.serving.postprocess import ChoicePostprocessor, GuardrailRunner
from app.serving.prompt import prepare_prompt, sampling_options, wants_json

log = logging.getLogger(__name__)


class ChatService:
    def __init__(self, settings: Settings, engine: Engine, ingestor: VideoIngestor,
                 guardrail: Guardrail | None, profile: Resolved):
        self.settings = settings
        self.engine = engine
        self.ingestor = ingestor
        self.guardrail = guardrail
        self.profile = profile
        self.limiter = Limiter(settings.max_concurrent_requests, settings.overload_retry_after_s)
        self.engine_failure: str | None = None  # set when the engine died: 503 at once
        # The model critic exists where its finding would count: a guardrail whose policy for
        # the critic's severity is not `off`.
        self.critic = ModelCritic(engine, settings.guardrail_critic_max_tokens,
                                  settings.guardrail_critic_severity) if guardrail is not None \
            and guardrail.policy[settings.guardrail_critic_severity] != "off" else None
        if settings.guardrail_critic and self.critic is None:
            log.warning("guardrail_critic is on, but the guardrail policy for %s findings (the "
                        "critic's severity) is off: the critic will not run",
                        settings.guardrail_critic_severity)
        self._deadlines: set[Deadline] = set()  # of requests being prepared or running

    def model_names(self) -> tuple[str, ...]:
        return (self.settings.model_name, self.settings.model, *self.engine.adapters)

    def route(self, model: str) -> tuple[str | None, Resolved]:
        """The LoRA adapter a request's `model` names (None: the base) and the profile that
        model is served with: an adapter's own cosmos-serve.yaml, else the base's."""
        if model in (self.settings.model_name, self.settings.model):
            return None, self.profile
        adapter = self.engine.adapters.get(model)
        if adapter is None:
            served = ", ".join(repr(n) for n in (self.settings.model_name, *self.engine.adapters))
            raise ModelNotFoundError(f"model {model!r} does not exist; this server serves "
                                     f"{served}", param="model")
        return adapter.name, adapter.profile or self.profile

    def critic_for(self, req: ChatCompletionRequest) -> ModelCritic | None:
        """The critic, if it runs for this request: the server's `guardrail_critic`, or the
        request's own choice where the server lets requests choose."""
        asked, default = req.guardrail_critic, self.settings.guardrail_critic
        if asked is not None and asked != default and not \
                self.settings.guardrail_critic_per_request:
            raise InvalidRequestError(
                f"this server does not let requests turn the model critic "
                f"{'on' if asked else 'off'} (guardrail_critic_per_request is false)",
                param="guardrail_critic")
        if asked and (self.critic is None or not req.guardrail):
            why = "the request turns the guardrail off" if not req.guardrail else (
                f"this server's guardrail policy for {self.settings.guardrail_critic_severity} "
                f"findings (the critic's) is off")
            raise InvalidRequestError(f"the model critic cannot run: {why}",
                                      param="guardrail_critic")
        on = default if asked is None else asked
        return self.critic if on and req.guardrail else None

    def stop_all(self) -> int:
        """End every request still running with 503 `shutting_down`; returns how many."""
        running = list(self._deadlines)
        for d in running:
            d.stop(ShuttingDownError("the server is shutting down; retry (another replica will "
                                     "answer)"))
        return len(running)

    async def prepare(self, req: ChatCompletionRequest,
                      deadline_header: str | None = None) -> "ChatCall":
        """`deadline_header`: the client's X-Request-Deadline-S, which can only lower
        request_deadline_s."""
        deadline = Deadline.for_request(self.settings.request_deadline_s, deadline_header)
        self._deadlines.add(deadline)
        try:
            call = await deadline.run(self._prepare(req, deadline))
        except BaseException as exc:
            self._deadlines.discard(deadline)
            if isinstance(exc, DeadlineExceededError):
                metrics.DEADLINES_EXCEEDED.inc()
            raise
        call.on_end = lambda: self._deadlines.discard(deadline)
        return call

    async def _prepare(self, req: ChatCompletionRequest, deadline: Deadline) -> "ChatCall":
        lora, profile = self.route(req.model)
        critic = self.critic_for(req)
        if self.engine_failure is not None:
            raise EngineUnavailableError("the inference engine stopped; the server is "
                                         "restarting, retry shortly")
        if not self.engine.ready:
            raise NotReadyError("the model is not ready (still loading, or its engine stopped); "
                                "retry when /health/ready is 200")
        slot = self.limiter.acquire()
        try:
            started = time.perf_counter()
            prepared = await prepare_prompt(req, self.settings, profile, self.engine,
                                            self.ingestor)
            sampling = sampling_options(req, profile, prepared.prompt_tokens,
                                        self.engine.max_model_len)
            inp = EngineInput(request_id=f"chatcmpl-{uuid.uuid4().hex}", prompt=prepared.prompt,
                              sampling=sampling, videos=prepared.videos, images=prepared.images,
                              lora=lora)
            context = GuardrailContext(duration_s=prepared.duration_s,
                                       choices=req.choices or extract_choices(prepared.question),
                                       truncated=False, question=prepared.question)
            raw = req.return_raw_text
            if raw is None:  # structured output is returned verbatim, never split on tags
                raw = self.settings.return_raw_text or wants_json(req)
            judge = None if critic is None else (critic, CriticContext(
                inp, prepared.question, prepared.vision_tokens, deadline.run))
            runner = GuardrailRunner(self.guardrail if req.guardrail else None, context, judge)
            procs = [ChoicePostprocessor(raw, runner, prepared.reasoning)
                     for _ in range(sampling.n)]
            count = UsageCount(started=started, vision=prepared.vision_tokens)
            request_context.note(video_s=round(sum(v.duration_s for v in prepared.videos),
                                               3))
            return ChatCall(self.engine, req, inp, procs, count, slot, deadline,
                            functools.partial(_media_info, prepared))
        except BaseException:
            slot.release()
            raise


async def _media_info(prepared) -> list[IngestedMedia] | None:
    """Awaited once the engine has the request: the frames' hashes run beside its work."""
    for v in prepared.videos:
        await v.hashed()
    out = [IngestedMedia(type="video", frames_sha256=v.frames_sha256, num_frames=v.num_frames,
                         width=v.resized_width, height=v.resized_height,
                         duration_s=round(v.duration_s, 6), sample_fps=round(v.sample_fps, 6),
                         vision_tokens=v.vision_tokens) for v in prepared.videos]
    out += [IngestedMedia(type="image", frames_sha256=_image_sha256(i), num_frames=1,
                          width=i.width, height=i.height) for i in prepared.images]
    return out or None


def _image_sha256(image) -> str:
    import hashlib

    return hashlib.sha256(image.tobytes()).hexdigest()
