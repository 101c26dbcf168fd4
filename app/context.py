"""The current request's id and its log record, visible to every stage without being passed along.

The middleware sets both at the start of a request (a context variable is copied into every task
the request starts, and the record is one shared dict); the chat service fills in the token and
video counts; the middleware writes the record as the request's one log line when it ends.
"""
from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

_REQUEST: ContextVar[dict | None] = ContextVar("cosmos_request", default=None)
# What a client may send as X-Request-Id: a tracing id, never free text in our logs.
_VALID_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")


def new_request_id(offered: str | None) -> str:
    if offered and _VALID_ID.fullmatch(offered):
        return offered
    return uuid.uuid4().hex


def begin(request_id: str, **fields) -> tuple[dict, object]:
    record = {"request_id": request_id, **fields}
    return record, _REQUEST.set(record)


def end(token) -> None:
    _REQUEST.reset(token)


def current_request_id() -> str | None:
    record = _REQUEST.get()
    return record["request_id"] if record else None


def note(**fields) -> None:
    """Add facts (token counts, video seconds) to the current request's log record."""
    record = _REQUEST.get()
    if record is not None:
        record.update(fields)
