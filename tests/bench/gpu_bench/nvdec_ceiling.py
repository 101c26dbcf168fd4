"""NVDEC's ceiling on this host: whole-clip decodes side by side, nothing else (no frame plan, no
skipped frames, no conversion), by decoders at once and by CUDA context: FFmpeg's own context per
decoder, or one primary context shared by all (as the server's, which torch also uses).

    python3 -m tests.bench.gpu_bench.nvdec_ceiling CLIP [CLIP...]   # JSON lines on stdout
"""
from __future__ import annotations

import json
import sys
import threading
import time

import av
from av.codec.hwaccel import HWAccel


def _decode(path: str, shared: bool, counts: list[int]) -> None:
    hw = HWAccel("cuda", device="0", allow_software_fallback=False, is_hw_owned=True,
                 options={"primary_ctx": "1"} if shared else None)
    with av.open(path, hwaccel=hw) as c:
        n = 0
        for frame in c.decode(c.streams.video[0]):
            if frame.format.name != "cuda":
                raise RuntimeError(f"software frame ({frame.format.name})")
            n += 1
    counts.append(n)


def run(path: str, n: int, shared: bool, rounds: int = 2) -> dict:
    counts: list[int] = []
    t = time.perf_counter()
    threads = [threading.Thread(target=lambda: [_decode(path, shared, counts)
                                                for _ in range(rounds)]) for _ in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    return {"clip": path.rsplit("/", 1)[-1], "decoders": n, "shared_ctx": shared,
            "frames": sum(counts), "wall_s": round(wall, 3), "fps": round(sum(counts) / wall, 1),
            "clips_per_s": round(len(counts) / wall, 2)}


def main() -> int:
    for path in sys.argv[1:]:
        _decode(path, True, [])  # load the driver's pieces once
        for shared in (True, False):
            for n in (1, 4, 8, 16, 32):
                print(json.dumps(run(path, n, shared)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
