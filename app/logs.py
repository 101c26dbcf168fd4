"""Logging for `cosmos-serve serve`: text for a terminal, or one JSON object per line.

JSON lines carry `ts`, `level`, `logger`, `message`, the `request_id` of the request being
served (when there is one) and, on the access line, the request's fields (route, status,
latency_s, prompt_tokens, vision_tokens, completion_tokens, video_s...). vLLM's loggers, in
this process and in its engine-core and worker processes, get the same formatter through
VLLM_LOGGING_CONFIG_PATH, so every line of the server's output is one JSON object.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time

from app.context import current_request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name,
               "message": record.getMessage()}
        fields = getattr(record, "request", None)
        if isinstance(fields, dict):
            out.update(fields)
        elif (rid := current_request_id()) is not None:
            out["request_id"] = rid
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if fmt == "json":
        # uvicorn's own handlers would print text beside ours: route its loggers to the root.
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            lg = logging.getLogger(name)
            lg.handlers.clear()
            lg.propagate = True
        _vllm_json(level)


def _vllm_json(level: str) -> None:
    """vLLM configures its loggers itself, in each of its processes, from this file."""
    if "VLLM_LOGGING_CONFIG_PATH" in os.environ:
        return
    config = {"version": 1, "disable_existing_loggers": False,
              "formatters": {"json": {"()": "app.logs.JsonFormatter"}},
              "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json",
                                    "stream": "ext://sys.stdout"}},
              "loggers": {"vllm": {"handlers": ["json"], "level": level.upper(),
                                   "propagate": False}}}
    fd, path = tempfile.mkstemp(prefix="cosmos-vllm-logging-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    os.environ["VLLM_LOGGING_CONFIG_PATH"] = path
