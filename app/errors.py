"""Domain exceptions and their one mapping to OpenAI's error body.

Every stage raises one of these; `install_error_handlers` turns them (and FastAPI's own
validation and routing errors) into `{"error": {message, type, param, code}}` with the right
status. Anything else is a bug and becomes a 500 with no internals leaked.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class CosmosError(Exception):
    status_code = 400
    error_type = "invalid_request_error"
    default_code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code or self.default_code
        self.headers: dict[str, str] = {}

    def body(self) -> dict:
        return error_body(self.message, self.error_type, self.param, self.code)


class InvalidRequestError(CosmosError):
    pass


class ConfigError(Exception):
    """A setting, profile or checkpoint that can never serve a request: raised at start, with
    the message naming the setting, file or key."""


class LoraAdapterError(InvalidRequestError):
    """A LoRA adapter directory that cannot be served (400 when loaded at runtime; at start it
    becomes a ConfigError naming the --lora it came from)."""
    default_code = "invalid_lora_adapter"


class ContextLengthError(CosmosError):
    default_code = "context_length_exceeded"


class MediaError(CosmosError):
    """A video or image that cannot be fetched, decoded or accepted."""
    default_code = "invalid_media"


class DecodeCancelledError(MediaError):
    """A decode stopped because every request waiting for it had gone (never sent)."""
    default_code = "decode_cancelled"


class MediaTimeoutError(MediaError):
    # 400, not 408: the OpenAI SDK retries 408s, which would triple a slow fetch.
    default_code = "media_timeout"


class PayloadTooLargeError(CosmosError):
    status_code = 413
    default_code = "payload_too_large"


class AuthenticationError(CosmosError):
    status_code = 401
    error_type = "authentication_error"
    default_code = "invalid_api_key"


class PermissionDeniedError(CosmosError):
    status_code = 403
    error_type = "permission_error"
    default_code = "permission_denied"


class ModelNotFoundError(CosmosError):
    status_code = 404
    default_code = "model_not_found"


class OverloadedError(CosmosError):
    status_code = 429
    error_type = "rate_limit_error"
    default_code = "too_many_requests"

    def __init__(self, message: str, *, retry_after_s: int = 1, **kw):
        super().__init__(message, **kw)
        self.headers["Retry-After"] = str(retry_after_s)


class DeadlineExceededError(CosmosError):
    """The request's deadline (request_deadline_s, or the client's X-Request-Deadline-S) passed:
    its engine request was aborted and its decode cancelled."""
    status_code = 504
    error_type = "timeout_error"
    default_code = "deadline_exceeded"


class ShuttingDownError(CosmosError):
    """Still running when the shutdown's drain window ended."""
    status_code = 503
    error_type = "service_unavailable"
    default_code = "shutting_down"


class NotReadyError(CosmosError):
    status_code = 503
    error_type = "service_unavailable"
    default_code = "engine_not_ready"


class EngineUnavailableError(NotReadyError):
    """The engine died (its process was killed, it crashed): every request gets this at once,
    never a hang, until the server has restarted."""
    default_code = "engine_unavailable"


class EngineError(CosmosError):
    status_code = 500
    error_type = "internal_server_error"
    default_code = "engine_error"


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    body: dict = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    # Beside `error`, not in it: OpenAI's error object keeps its four keys.
    from app.context import current_request_id

    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return body


def stream_error_body(exc: BaseException) -> dict:
    """The last event of a stream that failed after its headers were sent."""
    return as_cosmos_error(exc).body()


def as_cosmos_error(exc: BaseException) -> CosmosError:
    """A domain error for any exception out of the engine: vLLM's dead-engine errors become 503
    (the server is about to restart), anything else unexpected a 500 with no internals."""
    if isinstance(exc, CosmosError):
        return exc
    if type(exc).__name__ == "EngineDeadError":  # by name: this module never imports vLLM
        return EngineUnavailableError("the inference engine stopped; the server is restarting, "
                                      "retry shortly")
    log.error("stream failed", exc_info=exc)
    return EngineError("generation failed; see server logs")


def error_response(exc: CosmosError):
    """The HTTP response for a domain error raised where exception handlers do not reach
    (middleware)."""
    from fastapi.responses import JSONResponse

    if exc.status_code >= 500 and exc.status_code not in (503, 504):
        log.error("request failed: %s", exc.message)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers or None)


def _param(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or None


def install_error_handlers(app) -> None:
    # The web framework is imported here, not at module level: stages raise these exceptions
    # without depending on FastAPI.
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(CosmosError)
    async def _cosmos(_: Request, exc: CosmosError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # OpenAI answers a well-formed body of the wrong shape with 400, not FastAPI's 422.
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = tuple(first.get("loc", ()))
        msg = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":  # loc is a character offset, not a field
            detail = (first.get("ctx") or {}).get("error", msg)
            return JSONResponse(error_body(f"the request body is not valid JSON: {detail}",
                                           "invalid_request_error", None, "invalid_json"), 400)
        param = _param(loc)
        text = f"{param}: {msg}" if param else msg
        if len(errs) > 1:
            text += f" (and {len(errs) - 1} more error(s))"
        return JSONResponse(error_body(text, "invalid_request_error", param, "invalid_value"), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "invalid_request_error" if exc.status_code < 500 else "internal_server_error"
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
        return JSONResponse(error_body(str(exc.detail), type_, None, code), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if type(exc).__name__ == "EngineDeadError":
            return error_response(as_cosmos_error(exc))
        log.exception("unhandled error")
        return JSONResponse(error_body("internal server error", "internal_server_error", None,
                                       "internal_error"), 500)
