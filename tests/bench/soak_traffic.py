"""The soak's traffic (tests/bench/soak.py): one request of each kind it sends, good or hostile,
and the outcome class each one gets; what the good ones must come back as (each clip's frames
digest and vision tokens from `/v1/video/inspect`), and whole-versus-streamed parity.
"""
from __future__ import annotations

import base64
import json
import random
import threading
import time
from pathlib import Path

import httpx

MEDIA = Path(__file__).resolve().parents[3] / "shared" / "media"
CHAT = "/v1/chat/completions"
# Small sampling so the tiny CPU engine answers in about a second.
OPTIONS = {"video_fps": 1.0, "video_max_frames": 8, "video_max_pixels": 128 * 28 * 28,
           "max_tokens": 12, "temperature": 0.0, "seed": 7}
SSRF = ["http://169.254.169.254/latest/meta-data/", "http://2130706433/", "http://0x7f.1/",
        "http://017700000001/", "http://[::ffff:127.0.0.1]/", "http://[::1]/",
        "http://[64:ff9b::a9fe:a9fe]/", "http://metadata.google.internal/",
        "http://127.0.0.1:1/", "http://10.0.0.1/", "http://[fd00:ec2::254]/"]
# kind: (weight, statuses that count as a correct answer)
KINDS = {"good": (30, {200, 429}), "good_stream": (20, {200, 429}), "bad_json": (6, {400}),
         "truncated_b64": (6, {400, 429}), "corrupt": (8, {200, 400, 429}),
         "oversized": (4, {413, 429}), "ssrf": (8, {400, 429}), "disconnect": (8, {200, 429}),
         "deadline": (5, {504, 200, 429}), "bad_key": (5, {401})}


def data_url(raw: bytes) -> str:
    return "data:video/mp4;base64," + base64.b64encode(raw).decode()


def video_message(url: str, text: str = "What is happening? A) x B) y") -> list:
    return [{"role": "user", "content": [{"type": "video_url", "video_url": {"url": url}},
                                         {"type": "text", "text": text}]}]


class Soak:
    def __init__(self, url: str, model: str, api_key: str | None, video_max_bytes: int,
                 seed: int = 0):
        self.url, self.model = url, model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.video_max_bytes = video_max_bytes
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        clips = sorted(p for p in MEDIA.iterdir() if p.suffix in (".mp4", ".webm", ".mkv"))
        self.clips = {p.name: p.read_bytes() for p in clips if p.stat().st_size < video_max_bytes}
        self.expected: dict[str, dict] = {}
        self.outcomes: list[tuple[str, str, int, float]] = []  # kind, class, status, seconds
        self.failures: list[str] = []

    # --- preparation -------------------------------------------------------------------------
    def body(self, messages: list, **extra) -> dict:
        return {"model": self.model, "messages": messages, **OPTIONS, **extra}

    def inspect_all(self) -> None:
        """What each clip must come back as: frames digest and vision tokens."""
        opts = {k: v for k, v in OPTIONS.items() if k.startswith("video_")}
        for name, raw in self.clips.items():
            r = httpx.post(self.url + "/v1/video/inspect", headers=self.headers, timeout=300,
                           json={"url": data_url(raw), **opts})
            if r.status_code == 200:
                self.expected[name] = r.json()
        if not self.expected:
            raise RuntimeError("no clip could be inspected")

    def parity(self) -> int:
        """Whole and streamed answers for the same seed, one request at a time."""
        checked = 0
        for name in self.expected:
            body = self.body(video_message(data_url(self.clips[name])))
            whole = httpx.post(self.url + CHAT, json=body, headers=self.headers, timeout=300)
            text, _ = self.stream(body)
            msg = whole.json()["choices"][0]["message"] if whole.status_code == 200 else {}
            parts = (msg.get("reasoning_content") or "", msg.get("content") or "")
            if whole.status_code != 200 or text != parts:
                self.failures.append(f"parity {name}: whole {parts!r} != stream {text!r}")
            checked += 1
        return checked

    def stream(self, body: dict, drop_after_first: bool = False,
               headers: dict | None = None) -> tuple[tuple[str, str], dict]:
        """((reasoning, content), facts) of a streamed request."""
        reasoning, text, first = [], [], {}
        with httpx.stream("POST", self.url + CHAT, json={**body, "stream": True},
                          headers=headers or self.headers, timeout=300) as r:
            if r.status_code != 200:
                r.read()
                return ("", ""), {"status": r.status_code, "response": r}
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    return ("", ""), {"status": 200, "error": event["error"]}
                if not first:
                    first = event
                    if drop_after_first:
                        return ("", ""), {"status": 200, "dropped": True}
                for c in event.get("choices", []):
                    d = c.get("delta", {})
                    reasoning.append(d.get("reasoning_content") or "")
                    text.append(d.get("content") or "")
        return ("".join(reasoning), "".join(text)), {"status": 200, "first": first}

    # --- one request of each kind ------------------------------------------------------------
    def check_media(self, name: str, media: list | None, vision_tokens: int | None) -> None:
        want = self.expected[name]
        if not media or media[0]["frames_sha256"] != want["frames_sha256"]:
            self.failures.append(f"{name}: response media {media} is not this clip's")
        elif vision_tokens is not None and vision_tokens != want["vision_tokens"]:
            self.failures.append(f"{name}: vision tokens {vision_tokens} != "
                                 f"{want['vision_tokens']}")

    def one(self, kind: str) -> tuple[str, int]:
        name = self.rng.choice(sorted(self.expected))
        raw = self.clips[name]
        if kind == "good":
            r = self.post(self.body(video_message(data_url(raw))))
            if r.status_code == 200:
                j = r.json()
                self.check_media(name, j.get("media"),
                                 j["usage"]["prompt_tokens_details"]["vision_tokens"])
            return self.classify(r.status_code, r), r.status_code
        if kind == "good_stream":
            _, info = self.stream(self.body(video_message(data_url(raw))))
            if "first" in info:
                self.check_media(name, info["first"].get("media"), None)
            if "error" in info:
                return "stream_error:" + str(info["error"].get("code")), 200
            return self.classify(info["status"], info.get("response")), info["status"]
        if kind == "disconnect":
            _, info = self.stream(self.body(video_message(data_url(raw))), drop_after_first=True)
            return ("disconnected" if info.get("dropped")
                    else self.classify(info["status"], info.get("response")), info["status"])
        if kind == "bad_json":
            r = httpx.post(self.url + CHAT, content=b'{"model": "x", "messages": [', timeout=60,
                           headers={**self.headers, "content-type": "application/json"})
            return self.classify(r.status_code, r), r.status_code
        if kind == "truncated_b64":
            url = data_url(raw)
            head = url.index(",") + 1
            # One character past a multiple of four: never valid base64, however it is padded
            # (a prefix of whole quads would be a valid, decodable, truncated MP4).
            cut = self.rng.randrange(8, (len(url) - head) // 4) * 4 + 1
            url = url[:head + cut]
            r = self.post(self.body(video_message(url)))
            return self.classify(r.status_code, r), r.status_code
        if kind == "corrupt":
            bad = bytearray(raw)
            for _ in range(self.rng.randrange(1, 64)):
                i = self.rng.randrange(len(bad))
                bad[i:i + 8] = self.rng.randbytes(8)
            r = self.post(self.body(video_message(data_url(bytes(bad)))))
            return self.classify(r.status_code, r), r.status_code
        if kind == "oversized":
            r = self.post(self.body(video_message(data_url(
                self.rng.randbytes(self.video_max_bytes + 4096)))))
            return self.classify(r.status_code, r), r.status_code
        if kind == "ssrf":
            r = self.post(self.body(video_message(self.rng.choice(SSRF))))
            return self.classify(r.status_code, r), r.status_code
        if kind == "deadline":
            r = self.post(self.body(video_message(data_url(raw)), max_tokens=64),
                          extra={"X-Request-Deadline-S": "0.05"})
            return self.classify(r.status_code, r), r.status_code
        if kind == "bad_key":
            r = httpx.post(self.url + CHAT, json=self.body(video_message("x")), timeout=60,
                           headers={"Authorization": "Bearer not-a-key"})
            return self.classify(r.status_code, r), r.status_code
        raise ValueError(kind)

    def post(self, body: dict, extra: dict | None = None) -> httpx.Response:
        return httpx.post(self.url + CHAT, json=body, headers={**self.headers, **(extra or {})},
                          timeout=300)

    @staticmethod
    def classify(status: int, r: httpx.Response | None = None) -> str:
        if status == 200:
            return "ok"
        code = None
        if r is not None:
            try:
                code = r.json()["error"]["code"]
            except (ValueError, KeyError, TypeError):
                code = "unparsable_body"
        return f"{status}:{code}" if code else str(status)

    def task(self, kind: str) -> None:
        started = time.perf_counter()
        try:
            cls, status = self.one(kind)
        except httpx.TimeoutException:
            cls, status = "hang", 0
        except httpx.HTTPError as exc:
            cls, status = f"transport:{type(exc).__name__}", 0
        took = time.perf_counter() - started
        ok_statuses = KINDS[kind][1]
        with self.lock:
            self.outcomes.append((kind, cls, status, took))
            if status not in ok_statuses or cls == "hang" or cls.startswith(("transport",
                                                                              "stream_error")):
                self.failures.append(f"{kind}: {cls} (status {status})")
