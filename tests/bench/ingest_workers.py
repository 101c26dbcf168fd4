"""The video ingestion bench's methods (tests/bench/ingest.py), each run in a fresh process that
prints one JSON line: best wall and CPU time of `runs` calls, peak and base RSS, output shape.
The methods are described in ingest.py's docstring.
"""
from __future__ import annotations

import os
import resource
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "bench"
VARIANTS = ("ours", "ours-frames", "ours-1t")  # of ours: ratios are against ours


# --- workers: each runs in a fresh process and prints one JSON line -------------------------

def _cpu(who=resource.RUSAGE_SELF) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _status_mb(field: str) -> float:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec from the parent.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _target(path: str) -> tuple[int, int, list[int]]:
    """Our plan's size and frame indices, for the loops that need them."""
    from app.ingest.probe import probe
    from app.ingest.sampling import make_plan
    from app.ingest.options import default_options

    p = probe(path, deadline=time.monotonic() + 60)
    plan = make_plan(p.seconds(p.frame_pts), p.fps, p.height, p.width, default_options())
    p.close()
    return plan.height, plan.width, plan.indices.tolist()


def worker(method: str, path: str, runs: int) -> dict:
    import numpy as np

    fn, who = None, resource.RUSAGE_SELF
    if method in VARIANTS:
        from app.config import Settings
        from app.ingest.pipeline import ingest
        from app.ingest.options import default_options

        settings = Settings(**{"ours": {}, "ours-frames": {"video_decode_split": False},
                               "ours-1t": {"video_decode_threads": 1,
                                           "video_decode_split": False}}[method])

        def fn():
            return ingest(path, default_options(), settings).frames.shape
    elif method in ("hit", "hit-data"):
        return _hit(path, runs, data_url=method == "hit-data")
    elif method == "burst16":
        return _burst(path)
    elif method.startswith("burst8"):
        return _burst_distinct(path, 8, threads=1 if method.endswith("-1t") else 0)
    elif method == "qwen":
        os.environ["FORCE_QWENVL_VIDEO_READER"] = "decord"
        from qwen_vl_utils.vision_process import fetch_video

        ele = {"video": path, "fps": 4.0, "total_pixels": 6_422_528,
               "min_pixels": 128 * 784, "max_pixels": 768 * 784}

        def fn():
            v = fetch_video(ele)
            return (v.shape[0], v.shape[2], v.shape[3], v.shape[1])
    elif method == "vllm":
        from vllm.multimodal.video import Qwen2VLVideoBackend, resize_video

        data = Path(path).read_bytes()
        h, w, _ = _target(path)

        def fn():
            frames, _ = Qwen2VLVideoBackend.load_bytes(data, fps=4)
            return resize_video(np.asarray(frames), (h, w)).shape
    elif method in ("plain", "pyav-all"):
        import av

        h, w, indices = _target(path)
        keep = set(indices)

        def fn():
            out = []
            with av.open(path) as c:
                s = c.streams.video[0]
                s.thread_type = "AUTO"
                for i, frame in enumerate(c.decode(s)):
                    if method == "plain" and i in keep:
                        out.append(frame.to_ndarray(width=w, height=h, format="rgb24",
                                                    interpolation="BICUBIC"))
            return (len(out), h, w, 3) if method == "plain" else (i + 1,)
    elif method == "ffmpeg":
        who = resource.RUSAGE_CHILDREN
        timer = ["/usr/bin/time", "-f", "%M"] if Path("/usr/bin/time").exists() else []
        child_peak = [0.0]

        def fn():
            proc = subprocess.run([*timer, "ffmpeg", "-v", "error", "-threads", "2", "-i", path,
                                   "-f", "null", "-"], check=True, capture_output=True,
                                  text=True)
            if timer:  # GNU time prints the child's peak RSS (KB) as the last stderr line
                child_peak[0] = int(proc.stderr.strip().splitlines()[-1]) / 1024
            return ()
    base = _status_mb("VmRSS")
    walls, cpus, shape = [], [], None
    for _ in range(runs):
        c0, t0 = _cpu(who), time.perf_counter()
        shape = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu(who) - c0)
    if method == "ffmpeg":
        peak, base = child_peak[0], 0.0
    else:
        peak = _status_mb("VmHWM")
    return {"wall": min(walls), "cpu": min(cpus), "peak_mb": peak, "base_mb": base,
            "shape": list(shape)}


def _hit(path: str, runs: int, data_url: bool) -> dict:
    import asyncio
    import base64

    from app.config import Settings
    from app.ingest import VideoIngestor

    url = path
    if data_url:
        url = "data:video/mp4;base64," + base64.b64encode(Path(path).read_bytes()).decode()

    async def go():
        ing = VideoIngestor(Settings(allowed_local_media_dirs=(str(Path(path).parent),)))
        o = ing.options()
        clip = await ing.video(url, o)
        walls = []
        for _ in range(max(runs, 20)):
            t0 = time.perf_counter()
            await ing.video(url, o)
            walls.append(time.perf_counter() - t0)
        await ing.close()
        return clip.frames.shape, min(walls)

    shape, best = asyncio.run(go())
    return {"wall": best, "cpu": best, "peak_mb": 0.0, "base_mb": 0.0, "shape": list(shape)}


def _burst(path: str, n: int = 16) -> dict:
    """n concurrent questions about one clip, cold cache: the WTS evaluation pattern."""
    import asyncio

    from app.config import Settings
    from app.ingest import VideoIngestor

    async def go():
        ing = VideoIngestor(Settings(allowed_local_media_dirs=(str(Path(path).parent),)))
        o = ing.options()
        t0, c0 = time.perf_counter(), _cpu()
        clips = await asyncio.gather(*[ing.video(path, o) for _ in range(n)])
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        await ing.close()
        return clips[0].frames.shape, wall, cpu, sum(not c.cache_hit for c in clips)

    shape, wall, cpu, decodes = asyncio.run(go())
    return {"wall": wall, "cpu": cpu, "peak_mb": _status_mb("VmHWM"), "base_mb": 0.0,
            "shape": [*shape, f"{decodes} decode(s) for {n} requests"]}


def _burst_distinct(path: str, n: int, threads: int) -> dict:
    """n concurrent requests for n copies of the clip, cold: n decodes sharing the cores."""
    import asyncio
    import shutil
    import tempfile

    from app.config import Settings
    from app.ingest import VideoIngestor

    with tempfile.TemporaryDirectory(dir=CACHE) as d:
        copies = [shutil.copy(path, Path(d) / f"{i}{Path(path).suffix}") for i in range(n)]

        async def one(ing, url, o, t0):
            clip = await ing.video(url, o)
            return clip, time.perf_counter() - t0

        async def go():
            ing = VideoIngestor(Settings(allowed_local_media_dirs=(d,),
                                         video_decode_threads=threads))
            o = ing.options()
            t0, c0 = time.perf_counter(), _cpu()
            done = await asyncio.gather(*[one(ing, str(c), o, t0) for c in copies])
            wall, cpu = time.perf_counter() - t0, _cpu() - c0
            await ing.close()
            return done, wall, cpu

        done, wall, cpu = asyncio.run(go())
    ends = sorted(t for _, t in done)
    clip = done[0][0]
    return {"wall": wall, "cpu": cpu, "peak_mb": _status_mb("VmHWM"), "base_mb": 0.0,
            "first": ends[0], "median": ends[len(ends) // 2],
            "shape": [*clip.frames.shape, f"{n} decodes, {clip.extra['decode_parts']} part(s) "
                      f"and {clip.extra['decode_threads']} thread(s) for the first; first clip "
                      f"at {ends[0]:.3f} s, median {ends[len(ends) // 2]:.3f} s"]}
