"""The GIL's convoy effect on decode threads: a clip's index (the demux loop) and its first 40 decoded
frames, alone and beside one busy Python thread, at several thread switch intervals (what the server's
`gil_switch_interval_s` sets). PyAV releases the GIL around each FFmpeg call and must get it back;
a thread running Python keeps it for up to the switch interval each time.

    python tests/bench/gil_convoy.py [CLIP]   # default: the 10 s 1080p clip of `gpu.py make-clip`
"""
from __future__ import annotations

import io
import sys
import threading
import time
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / ".gpu/clip/drv_dusk_1080p30_10s.mp4"
FALLBACK = ROOT.parent / "shared/media/drv_transfer1_av_rgb_dusk_9s.mp4"


def index(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size)


def decode40(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as c:
        s = c.streams.video[0]
        s.codec_context.thread_count = 1
        n = 0
        for p in c.demux(s):
            n += len(s.codec_context.decode(p))
            if n >= 40:
                return n
    return n


def timed(fn, data: bytes) -> float:
    t = time.perf_counter()
    fn(data)
    return 1e3 * (time.perf_counter() - t)


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else (DEFAULT if DEFAULT.exists() else FALLBACK)
    data = path.read_bytes()
    stop = threading.Event()

    def busy() -> None:
        x = 0
        while not stop.is_set():
            for i in range(1000):
                x += i * i

    print(f"{path.name}: alone, index {min(timed(index, data) for _ in range(3)):.1f} ms, "
          f"40 frames {min(timed(decode40, data) for _ in range(3)):.1f} ms")
    for interval in (0.005, 0.001, 0.0005, 0.00025, 0.0001):
        sys.setswitchinterval(interval)
        stop.clear()
        th = threading.Thread(target=busy)
        th.start()
        time.sleep(0.05)
        i, d = timed(index, data), timed(decode40, data)
        stop.set()
        th.join()
        print(f"switch interval {interval * 1e3:5.2f} ms, beside a busy thread: index {i:6.1f} ms, "
              f"40 frames {d:6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
