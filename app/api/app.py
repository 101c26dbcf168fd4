"""The FastAPI application factory.

`create_app(settings, engine=None)` builds the app; the engine is constructed (unless injected)
and started in the lifespan, in the background, so that `/health/live` answers while weights
load and `/health/ready` turns 200 only once the engine can serve.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import __version__, metrics
from app.api import chat, inspect, routes
from app.api.middleware import RequestMiddleware
from app.config import Settings
from app.engine.base import Engine
from app.engine.warmup import warm_up
from app.errors import install_error_handlers
from app.guardrail import Guardrail
from app.ingest import VideoIngestor
from app.profiles import deployment_profile
from app.serving.chat import ChatService

log = logging.getLogger(__name__)


def build_engine(settings: Settings) -> Engine:
    if settings.engine == "fake":
        from app.engine.fake import FakeEngine

        return FakeEngine(settings)
    from app.engine.checkpoint import prepare_checkpoint
    from app.errors import ConfigError
    from app.quantize.detect import current_platform, declared_quantization
    from app.engine.vllm_engine import VLLMEngine

    # Checked before vLLM starts; the path it loads may be an overlay with borrowed files.
    path = prepare_checkpoint(settings.model, settings.processor,
                              load_format=settings.load_format)
    declared = declared_quantization(settings.model)
    if declared is not None:
        problem = declared.serving_problem(current_platform())
        if problem:
            raise ConfigError(problem)
    if path != settings.model:
        settings = settings.model_copy(update={"model": path,
                                               "served_model_name": settings.model_name})
    return VLLMEngine(settings)


def quantization_label(settings: Settings) -> str | None:
    """What /v1/models and /version report: the checkpoint's declared scheme, else the
    on-the-fly one, else None (the checkpoint's own dtype)."""
    from app.quantize.detect import declared_quantization

    declared = declared_quantization(settings.model)
    if declared is not None:
        return declared.label
    return f"{settings.quantization} (on the fly)" if settings.quantization else None


def _build_guardrail(settings: Settings) -> Guardrail | None:
    if all(p == "off" for p in settings.guardrail_policy.values()):
        return None
    return Guardrail.from_yaml(settings.guardrail_rules_path, policy=settings.guardrail_policy)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """Raises ConfigError (before anything starts) for settings that can never serve."""
    profile = deployment_profile(settings)
    if settings.video_decoder == "nvdec":
        from app.errors import ConfigError
        from app.ingest.nvdec import host_supports

        problem = host_supports()
        if problem:
            raise ConfigError(f"video_decoder=nvdec, but {problem}; use auto or cpu")
    engine = engine or build_engine(settings)
    quantization = quantization_label(settings)

    def fail(app: FastAPI, what: str, exc: BaseException) -> None:
        # A dead engine cannot recover in-process: report it on /health/live and stop the
        # server so that the orchestrator restarts the container.
        log.error("%s: %s", what, exc)
        metrics.ENGINE_READY.set(0)
        app.state.engine_failure = f"{what}: {type(exc).__name__}: {exc}"
        chat = getattr(app.state, "chat", None)
        if chat is not None:  # new requests get 503 at once, not a wait on a dead engine
            chat.engine_failure = app.state.engine_failure
        if app.state.on_engine_failure is not None:
            app.state.on_engine_failure()

    async def run_engine(app: FastAPI) -> None:
        try:
            await engine.start()
        except Exception as exc:  # noqa: BLE001
            log.exception("engine failed to start")
            return fail(app, "engine failed to start", exc)
        try:  # after the engine: its workers must be started before this process touches CUDA
            await app.state.ingestor.start_decoders()
        except Exception as exc:  # noqa: BLE001
            return fail(app, "video_decoder=nvdec, but NVDEC failed to start", exc)
        if settings.warmup_on_start:
            try:
                took = await warm_up(engine)
                log.info("engine warmed up in %.1f s", took)
            except Exception as exc:  # noqa: BLE001 - a failed warm-up only costs the first user
                log.warning("engine warm-up failed (serving anyway): %s: %s",
                            type(exc).__name__, exc)
        app.state.warming = False
        metrics.ENGINE_READY.set(1)
        log.info("engine ready: %s (max_model_len %d)", engine.model_name, engine.max_model_len)
        while True:
            await asyncio.sleep(settings.engine_watchdog_interval_s)
            try:
                await engine.health()
            except Exception as exc:  # noqa: BLE001
                return fail(app, "engine died", exc)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Process-wide: decode threads get the GIL back sooner after each FFmpeg call.
        sys.setswitchinterval(settings.gil_switch_interval_s)
        ingestor = VideoIngestor(settings, profile)
        app.state.ingestor = ingestor
        app.state.chat = ChatService(settings, engine, ingestor, _build_guardrail(settings),
                                     profile)
        starter = asyncio.create_task(run_engine(app))
        try:
            yield
        finally:
            starter.cancel()
            metrics.ENGINE_READY.set(0)
            await ingestor.close()
            await engine.shutdown()

    app = FastAPI(title="cosmos-serve", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.engine_failure = None
    app.state.warming = True  # until the start-up warm-up is over: /health/ready stays 503
    app.state.on_engine_failure = None
    app.state.draining = False  # shutting down: /health/ready is 503 from the first signal
    app.state.profile = profile
    app.state.quantization = quantization
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware, settings=settings)

    app.include_router(chat.router)
    app.include_router(inspect.router)
    app.include_router(routes.router)
    return app
