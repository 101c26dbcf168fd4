"""The one HTTP middleware: request id, API key, body size, request metrics and the access log.

Plain ASGI rather than Starlette's `BaseHTTPMiddleware`, so that it sees a streamed response to
its last byte (a stream's latency and status are its whole life's) and can refuse a request body
that comes without a Content-Length (chunked) as soon as it passes the cap, before the route
has parsed any of it.

Each request gets an id (the client's `X-Request-Id` when it is a plausible id, else a new one),
returned as `X-Request-Id` and in error bodies, and one log line when it ends: route, status,
latency, tokens and video seconds, never the prompt, the media or the key.
"""
from __future__ import annotations

import logging
import time

from app import metrics
from app import context
from app.api.auth import KeyStore, bearer
from app.config import Settings
from app.errors import AuthenticationError, PayloadTooLargeError, error_response

log = logging.getLogger("cosmos.access")

_PROBES = ("/health", "/v1/health", "/version", "/v1/version")
_METRICS = ("/metrics", "/v1/metrics")
_COUNTED = ("/v1/chat", "/v1/video")


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


class RequestMiddleware:
    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings
        self.keys = KeyStore(settings)

    def _open(self, path: str) -> bool:
        if path.startswith(_PROBES):
            return True
        return path.startswith(_METRICS) and not self.settings.metrics_require_key

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        path = scope["path"]
        rid = context.new_request_id(_header(scope, b"x-request-id"))
        record, token = context.begin(rid, method=scope["method"], route=path)
        status = [0]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            rejection = self._reject(scope, path)
            if rejection is not None:
                await error_response(rejection)(scope, receive, send_with_id)
                return
            if _header(scope, b"content-length") is None and scope["method"] in ("POST", "PUT",
                                                                              "PATCH"):
                replay = await self._buffered(receive)
                if replay is None:
                    limit = self.settings.max_request_body_bytes
                    await error_response(PayloadTooLargeError(
                        f"request body is larger than the limit of {limit} bytes "
                        f"(max_request_body_bytes)"))(scope, receive, send_with_id)
                    return
                receive = replay
            await self.app(scope, receive, send_with_id)
        except BaseException:
            status[0] = status[0] or 500
            raise
        finally:
            self._finish(path, status[0], time.perf_counter() - started, record)
            context.end(token)

    def _reject(self, scope, path: str):
        if self.keys.enabled and not self._open(path):
            if not self.keys.check(bearer(_header(scope, b"authorization") or "")):
                return AuthenticationError("invalid or missing API key")
        length = _header(scope, b"content-length")
        limit = self.settings.max_request_body_bytes
        if length and length.isdigit() and int(length) > limit:
            return PayloadTooLargeError(f"request body is {int(length)} bytes; the limit is "
                                        f"{limit} bytes (max_request_body_bytes)")
        return None

    async def _buffered(self, receive):
        """A body without Content-Length, read here up to the cap (the route would read it
        whole anyway) and replayed; None once it passes the cap."""
        limit, chunks, size = self.settings.max_request_body_bytes, [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                chunks.append(message)
                break
            size += len(message.get("body", b""))
            if size > limit:
                return None
            chunks.append(message)
            if not message.get("more_body", False):
                break

        async def replay():
            return chunks.pop(0) if chunks else await receive()

        return replay

    @staticmethod
    def _finish(path: str, status: int, seconds: float, record: dict) -> None:
        if path.startswith(_COUNTED):
            metrics.REQUESTS.labels(path, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(path).observe(seconds)
        record.update(status=status, latency_s=round(seconds, 4))
        level = logging.INFO if path.startswith(_COUNTED) else logging.DEBUG
        if log.isEnabledFor(level):
            facts = " ".join(f"{k}={v}" for k, v in record.items()
                             if k not in ("request_id", "method", "route", "status", "latency_s"))
            log.log(level, "%s %s %s %d %.3fs %s", record["request_id"], record["method"], path,
                    status, seconds, facts, extra={"request": dict(record)})
