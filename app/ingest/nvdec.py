"""Decode on the GPU's NVDEC engines, convert and resize there, hand over only the small frames.

Route (issue 16 measured the candidates on an H200; docs/performance.md, "NVDEC"): FFmpeg's
native H.264/HEVC/VP9 parsers with the CUDA hwaccel, through PyAV (already a dependency):
- the parser stays FFmpeg's, so the frame plan, the keyframe-interval parts
  (app/ingest/split.py) and `skip_frame=NONREF` for unwanted frames work exactly as on the CPU,
  and an H.264/HEVC decode is bit-exact by the standard: the same YUV samples as the CPU's;
- decoded surfaces stay on the GPU (`is_hw_owned`) and reach torch by DLPack, with no copy;
  kept frames are converted and resized there (app/ingest/gpu_frames.py) and only the resized
  frames cross to host memory;
- decoders are pooled across clips: making one cost ~0.5 s on an H200, one at a time.

CUDA is only touched in `Nvdec.start()`, called once the vLLM engine core is running (a CUDA
context made before vLLM forks its workers would break them). Any NVDEC error gives the clip
back to the CPU decoder (app/ingest/pipeline.py), counted in `cosmos_ingest_nvdec_fallbacks_total`.
"""
from __future__ import annotations

import ctypes
import functools
import importlib.util
import io
import logging
import threading
import time

import av
import numpy as np

from app.ingest.decode import Frames, fresh_decoder
from app.ingest.gpu_frames import GpuFrames, GpuSink
from app.ingest.probe import Probe
from app.ingest.sampling import Plan

log = logging.getLogger(__name__)

# Native decoders with an NVDEC hwaccel, and NVDEC's smallest and largest frame side for each
# (NVIDIA's Video Codec SDK support matrix, Ampere and later). AV1 is absent: PyAV opens AV1 with
# libdav1d, which has no hwaccel (FFmpeg's own "av1" decoder has one, but a demuxer's codec
# context, needed for the display matrix, cannot be switched to it).
SIDES = {"h264": (48, 4096), "hevc": (144, 8192), "vp9": (128, 8192)}
# Keyframe-interval parts of one clip decoded side by side, a decoder (and its surfaces) each: an
# H100/H200 has 7 NVDEC engines, shared by every clip decoding at once.
MAX_PARTS = 8
_CU_CTX_SCHED_BLOCKING_SYNC = 0x04


class NvdecError(Exception):
    """NVDEC could not decode this clip; the CPU decoder takes it."""


def host_supports() -> str | None:
    """Why this host cannot decode on NVDEC, or None. Loads libraries only: no CUDA context is
    made, so it is safe before vLLM starts its workers."""
    try:
        from av.codec.hwaccel import hwdevices_available
    except ImportError:
        return f"PyAV {av.__version__} has no hardware decoding"
    if "cuda" not in hwdevices_available():
        return "this PyAV's FFmpeg was built without CUDA"
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (it converts and resizes the frames on the GPU)"
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return "this host has no NVIDIA driver (libcuda.so.1 not found)"
    return None


def codec_reason(probe: Probe) -> str | None:
    """Why NVDEC cannot take this stream, or None."""
    name = probe.stream.codec_context.name
    if name not in SIDES:
        return f"codec {name}"
    low, high = SIDES[name]
    if max(probe.width, probe.height) > high or min(probe.width, probe.height) < low:
        return f"frame size {probe.width}x{probe.height}"
    return None


class Nvdec:
    """The server's NVDEC decoder: a CUDA device, started once, and a bound on the clips it
    decodes at once (each holds a decoder and its surfaces on the GPU)."""

    def __init__(self, device: int = 0, max_decodes: int = 8, threads: int = 4,
                 max_decoders: int = 16, blocking_sync: bool = False,
                 keep_idle: int | None = None):
        self.device, self.max_decodes, self.threads = device, max_decodes, threads
        self.max_decoders, self.blocking_sync = max_decoders, blocking_sync
        self.ready = False
        self.failure: str | None = None
        # Idle decoders kept for later clips, all streams together (a decode process passes the
        # server's whole max_decoders: its share alone would evict one stream's decoders for
        # another's at every clip, ~60 ms a clip measured).
        self.keep_idle = max(keep_idle or max_decoders, MAX_PARTS)
        self._slots = threading.BoundedSemaphore(max_decodes)
        self._busy = 0  # clips holding a slot
        self._busy_lock = threading.Lock()
        self.torch = None
        self._ctx: ctypes.c_void_p | None = None
        self._idle: dict[tuple, list] = {}  # idle decoders by codec and stream parameters
        self._pool_lock = threading.Lock()

    def bind_thread(self) -> None:
        """Make torch's context current in this thread, for FFmpeg to adopt (`current_ctx`)."""
        if self._ctx is None:
            raise NvdecError("NVDEC was not started")
        _check(_cuda().cuCtxSetCurrent(self._ctx), "cuCtxSetCurrent")

    def start(self) -> float:
        """Make the CUDA context and decode a tiny clip once (loads NVDEC, cuvid and the torch
        kernels, ~1 s the first user would otherwise pay); returns the seconds it took."""
        started = time.perf_counter()
        import torch

        if not torch.cuda.is_available():
            raise NvdecError("torch sees no CUDA device")
        self.torch = torch
        if self.blocking_sync:  # before torch makes the context (set_device does)
            _set_primary_flags(self.device, _CU_CTX_SCHED_BLOCKING_SYNC)
        torch.cuda.set_device(self.device)
        torch.zeros(1, device=f"cuda:{self.device}")  # the device's primary context, torch's
        self._ctx = _primary_context(self.device)
        data = _tiny_clip()
        from app.ingest.probe import probe as open_probe
        from app.ingest.sampling import make_plan
        from app.ingest.types import VideoOptions

        p = open_probe(data, time.monotonic() + 30)
        try:
            options = VideoOptions(fps=4.0, nframes=None, min_frames=2, max_frames=8,
                                   min_pixels=4 * 28 * 28, max_pixels=256 * 144,
                                   total_pixels=8 * 256 * 144)
            plan = make_plan(p.seconds(p.frame_pts), p.fps, p.height, p.width, options,
                             tick_s=float(p.time_base))
            from app.ingest.decode import decode

            with self.backend(p, data) as backend:
                decode(p, plan, deadline=time.monotonic() + 30, backend=backend)
        finally:
            p.close()
        self.ready = True
        return time.perf_counter() - started

    def try_acquire(self, wait_s: float = 0.0) -> bool:
        got = self._slots.acquire(timeout=wait_s) if wait_s > 0 else self._slots.acquire(False)
        if got:
            with self._busy_lock:
                self._busy += 1
        return got

    def release(self) -> None:
        with self._busy_lock:
            self._busy -= 1
        self._slots.release()

    def parts(self, wanted: int) -> int:
        """Keyframe-interval parts for a clip that holds a slot: its share of max_decoders
        among the clips decoding now (a lone clip: up to MAX_PARTS)."""
        with self._busy_lock:
            share = self.max_decoders // max(1, self._busy)
        return max(1, min(wanted, MAX_PARTS, share))

    def backend(self, probe: Probe, source: str | bytes) -> NvdecBackend:
        return NvdecBackend(self, probe, source)

    def take_decoder(self, stream_cc):
        """A decoder for this stream's codec and parameters: an idle one from an earlier clip
        (flushed; its NVDEC session and surfaces kept) or a new one. Making a decoder costs
        ~0.2-0.5 s on an H200 and the driver makes them one at a time, so a decoder per clip
        made NVDEC slower than the CPU."""
        key = _key(stream_cc)
        with self._pool_lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop()
        return fresh_decoder(stream_cc, hwaccel=self._hwaccel())

    def give_back(self, cc, reuse: bool) -> None:
        if not reuse:
            return  # a decoder that failed is dropped (closed when collected)
        cc.flush_buffers()
        with self._pool_lock:
            idle = self._idle.setdefault(_key(cc), [])
            if sum(len(v) for v in self._idle.values()) < self.keep_idle:
                idle.append(cc)

    def _hwaccel(self):
        from av.codec.hwaccel import HWAccel

        # FFmpeg adopts the context current in this thread, torch's (the device's primary
        # context), so surfaces are valid tensors there. FFmpeg's own `primary_ctx` would ask
        # for other context flags than torch's and fail once torch has made it.
        return HWAccel("cuda", device=str(self.device), allow_software_fallback=False,
                       is_hw_owned=True, options={"primary_ctx": "0", "current_ctx": "1"})


class NvdecBackend:
    """The `decode.Backend` for NVDEC: pooled hwaccel decoders, frames gathered on the GPU."""

    name, strict = "nvdec", True

    def __init__(self, nvdec: Nvdec, probe: Probe, source: str | bytes):
        self.nvdec, self.probe, self.source = nvdec, probe, source
        self.torch = nvdec.torch
        self._taken: list = []
        self._ok = False
        nvdec.bind_thread()

    def __enter__(self) -> NvdecBackend:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        for cc in self._taken:
            self.nvdec.give_back(cc, reuse=exc_type is None)

    def decoder(self, probe: Probe, first: bool):
        cc = self.nvdec.take_decoder(probe.stream.codec_context)
        self._taken.append(cc)
        return cc

    def frames(self, plan: Plan) -> GpuFrames:
        out = GpuFrames(plan, self.torch, self.nvdec.device)
        # Pooled decoders know nothing of this stream's display matrix; the stream's own
        # (CPU) decoder puts it on its frames: one keyframe tells (~10 ms for 1080p).
        out.rotation = _rotation(self.probe)
        return out

    def sink(self, out: Frames, slots: dict[int, list[int]], rotation_source: bool) -> GpuSink:
        return GpuSink(out, slots, rotation_source)

    def threads(self, wanted: int) -> int:
        return self.nvdec.threads


def _rotation(probe: Probe) -> int:
    cc = probe.stream.codec_context
    cc.thread_count = 1
    try:
        for packet in probe.packets:
            if packet.is_keyframe:
                frames = cc.decode(packet) or cc.decode(None)
                if frames:
                    return int(round(frames[0].rotation / 90.0)) * 90 % 360
                break
        return 0
    finally:
        cc.flush_buffers()  # the stream's decoder stays usable for a fallback to the CPU


def _key(cc) -> tuple:
    return (cc.codec.name, bytes(cc.extradata or b""), cc.width, cc.height)


@functools.cache
def _cuda():
    return ctypes.CDLL("libcuda.so.1")


def _check(status: int, call: str) -> None:
    if status != 0:
        raise NvdecError(f"{call} failed (CUresult {status})")


def _set_primary_flags(device: int, flags: int) -> None:
    """Flags of the device's primary context, this process's (vLLM's GPU work is in its engine
    core's processes). Blocking sync: a thread waiting for the GPU (a frame's map, a copy)
    sleeps instead of spinning a core, which in a burst the event loop, vLLM's processing and
    the clients need."""
    cuda, dev = _cuda(), ctypes.c_int()
    _check(cuda.cuInit(0), "cuInit")
    _check(cuda.cuDeviceGet(ctypes.byref(dev), device), "cuDeviceGet")
    set_flags = getattr(cuda, "cuDevicePrimaryCtxSetFlags_v2", None) or \
        cuda.cuDevicePrimaryCtxSetFlags
    _check(set_flags(dev, ctypes.c_uint(flags)), "cuDevicePrimaryCtxSetFlags")


def _primary_context(device: int) -> ctypes.c_void_p:
    """The device's primary context (retained once, for the process's life)."""
    cuda, dev, ctx = _cuda(), ctypes.c_int(), ctypes.c_void_p()
    _check(cuda.cuDeviceGet(ctypes.byref(dev), device), "cuDeviceGet")
    _check(cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
    return ctx


def _tiny_clip() -> bytes:
    """A 256x144 H.264 clip of 8 frames, made in memory for the start-up decode."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 256, 144, "yuv420p"
        for i in range(8):
            img = np.full((144, 256, 3), 30 * i, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()
