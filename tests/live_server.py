"""A real uvicorn server in this process over the fake engine: real HTTP, real disconnects,
and the engine object at hand to see what it was asked to do (and to abort)."""
from __future__ import annotations

import threading
import time

import httpx
import uvicorn

from app.api.app import create_app
from app.config import Settings
from app.engine.fake import FakeEngine
from tests.conftest import MEDIA, free_port


class LiveServer:
    def __init__(self, engine: FakeEngine, **overrides):
        self.port = free_port()
        settings = Settings(model="tiny", engine="fake", allowed_local_media_dirs=(MEDIA,),
                            **overrides)
        self.engine = engine
        self.app = create_app(settings, engine=engine)
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health/ready").status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("test server did not become ready")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def metric(self, name: str) -> float:
        for line in httpx.get(self.url + "/metrics").text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise KeyError(name)
