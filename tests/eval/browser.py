"""Open a page in Debian's chromium, headless, through the DevTools protocol.

Returns what a reader would see: every <img> with its decoded size, the console messages and
uncaught exceptions, and any request the page made that was not a data: URL (a self-contained
report makes none).
"""
from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--remote-debugging-port=0"]
IMAGES_JS = """JSON.stringify(Array.from(document.images).map(i => ({alt: i.alt,
  complete: i.complete, width: i.naturalWidth, height: i.naturalHeight})))"""


def chromium_path() -> str | None:
    return CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")


def _devtools_port(profile: Path, proc: subprocess.Popen, timeout_s: float = 60) -> int:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        if port_file.exists() and port_file.read_text().strip():
            return int(port_file.read_text().split()[0])
        time.sleep(0.2)
    raise TimeoutError("chromium did not open its DevTools port")


async def _inspect(ws_url: str, page_url: str) -> dict:
    import websockets

    console, exceptions, requests = [], [], []
    async with websockets.connect(ws_url, max_size=64 * 2**20) as ws:
        ids = iter(range(1, 10**6))
        pending: dict[int, asyncio.Future] = {}
        loaded = asyncio.get_running_loop().create_future()

        async def reader():
            async for raw in ws:
                msg = json.loads(raw)
                if "id" in msg and msg["id"] in pending:
                    pending.pop(msg["id"]).set_result(msg)
                method, params = msg.get("method"), msg.get("params", {})
                if method == "Runtime.consoleAPICalled":
                    console.append({"type": params["type"], "text": " ".join(
                        str(a.get("value", a.get("description", ""))) for a in params["args"])})
                elif method == "Log.entryAdded":
                    e = params["entry"]
                    console.append({"type": e["level"], "text": e.get("text", "")})
                elif method == "Runtime.exceptionThrown":
                    exceptions.append(params["exceptionDetails"].get("text"))
                elif method == "Network.requestWillBeSent":
                    url = params["request"]["url"]
                    if not url.startswith("data:") and url != page_url:
                        requests.append(url)
                elif method == "Page.loadEventFired" and not loaded.done():
                    loaded.set_result(True)

        async def call(method: str, **params) -> dict:
            i = next(ids)
            pending[i] = asyncio.get_running_loop().create_future()
            await ws.send(json.dumps({"id": i, "method": method, "params": params}))
            return await asyncio.wait_for(pending[i], 60)

        task = asyncio.create_task(reader())
        for domain in ("Page", "Runtime", "Log", "Network"):
            await call(f"{domain}.enable")
        await call("Page.navigate", url=page_url)
        await asyncio.wait_for(loaded, 60)
        images = json.loads((await call("Runtime.evaluate", expression=IMAGES_JS))
                            ["result"]["result"]["value"])
        title = (await call("Runtime.evaluate", expression="document.title"))["result"]["result"]
        shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        task.cancel()
    return {"images": images, "console": console, "exceptions": exceptions,
            "requests": requests, "title": title.get("value"),
            "screenshot_png": shot["result"]["data"]}


def open_page(path: Path, width: int = 1280, height: int = 2000) -> dict:
    """Load `path` in headless chromium; what rendered, and what went wrong."""
    exe = chromium_path()
    if exe is None:
        raise RuntimeError("chromium not installed (deploy/test.sh installs it)")
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}",
                                 f"--window-size={width},{height}", "about:blank"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port = _devtools_port(Path(profile), proc)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                page = next(t for t in json.load(r) if t["type"] == "page")
            return asyncio.run(_inspect(page["webSocketDebuggerUrl"], path.resolve().as_uri()))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
