"""Kept frames on the GPU: NVDEC's surfaces converted to RGB and resized there (nvdec.py).

A kept frame is converted to RGB (BT.601, with swscale's rounding, chroma repeated over its 2x2
block, as the reference's `to_ndarray(format="rgb24")` does) and resized with torch's antialiased
bicubic (what the reference, qwen-vl-utils, applies with torchvision). Only the resized frames
(40 x 196 x 364 x 3 = 8.6 MB for a 1080p clip at the 81,920 budget) cross to host memory: vLLM's
processor takes host arrays in its API process (its engine core is another process), so that
copy is the one left. Against the reference: 0.37 levels mean, 3 at most (docs/performance.md).
"""
from __future__ import annotations

import av
import numpy as np

from app.ingest.decode import Frames, Sink
from app.ingest.sampling import Plan


class NvdecFrameError(Exception):
    """A frame that is not a GPU surface (the decoder fell back to software)."""


class GpuFrames(Frames):
    def __init__(self, plan: Plan, torch, device: int):
        self.torch = torch
        self.frames = torch.empty((plan.nframes, plan.height, plan.width, 3),
                                  dtype=torch.uint8, device=f"cuda:{device}")
        self.filled = np.zeros(plan.nframes, dtype=bool)
        self.rotation = None
        self.width, self.height = plan.width, plan.height

    def host(self) -> np.ndarray:
        # Into page-locked memory (torch's caching host allocator, so blocks are reused): the
        # copy runs at DMA speed, where pageable memory went at ~1.5 GB/s on the H200 host (25
        # ms for the default budget's 37 MB), and vLLM's processor, on the GPU, reads the frames
        # back from it at DMA speed too. The pinned pool grows to the frames held at once: in
        # flight, and in the clip cache (video_cache_bytes).
        out = self.torch.empty(tuple(self.frames.shape), dtype=self.torch.uint8, pin_memory=True)
        out.copy_(self.frames)
        return out.numpy()


class GpuSink(Sink):
    def __init__(self, out: GpuFrames, slots: dict[int, list[int]], rotation_source: bool):
        self.out, self.slots, self.rotation_source = out, slots, rotation_source
        self.buf = None  # (4, H, W) float32, reused for every frame of this decoder

    def store(self, frame: av.VideoFrame, targets: list[int]) -> None:
        if frame.format.name != "cuda":
            raise NvdecFrameError(f"the decoder returned a {frame.format.name} frame, "
                                  f"not a GPU one")
        torch = self.out.torch
        y = torch.from_dlpack(frame.planes[0].__dlpack__())  # (H, W); PyAV negotiates no stream
        uv = torch.from_dlpack(frame.planes[1].__dlpack__())  # (H/2, W/2, 2)
        if self.buf is None or self.buf.shape[1:] != y.shape:
            self.buf = torch.empty((4, *y.shape), dtype=torch.float32, device=y.device)
        rgb = nv12_to_rgb(torch, y, uv, frame.color_range == 2, self.buf)
        small = resize(torch, rgb, self.out.height, self.out.width)
        for slot in targets:
            self.out.frames[slot].copy_(small)  # float to uint8: already whole levels
            self.out.filled[slot] = True


# BT.601 inverse matrices: (luma gain, cr->R, cb->G, cr->G, cb->B) for limited and full range
_LIMITED = (255.0 / 219.0, 1.596027, 0.391762, 0.812968, 2.017232)
_FULL = (1.0, 1.402, 0.344136, 0.714136, 1.772)


def nv12_to_rgb(torch, y, uv, full_range: bool, buf):
    """(3, H, W) float32 RGB in 0-255, whole levels as swscale's 8-bit conversion gives: BT.601,
    limited range unless the frame says full, chroma repeated over its 2x2 block (swscale's
    unscaled conversion, which the reference's `to_ndarray(format="rgb24")` uses). `buf`: a
    (4, H, W) float32 scratch the result is a view of.

    Written as few torch calls as it takes (each gives up and takes back the GIL, which a burst's
    decode threads queue for: docs/performance.md, fifth session): planes 1 and 3 take V and U,
    plane 2 G, then R and B replace V and U in place, so planes 1-3 are R, G, B."""
    h, w = y.shape
    lum, chroma_v, chroma_u = buf[0], buf[1], buf[3]
    lum.copy_(y)
    if h % 2 or w % 2:  # odd sizes: the last row/column repeats the chroma of the block
        up = uv.repeat_interleave(2, 0).repeat_interleave(2, 1)[:h, :w]
        chroma_v.copy_(up[..., 1])
        chroma_u.copy_(up[..., 0])
    else:
        blocks = (h // 2, 2, w // 2, 2)
        chroma_v.view(blocks).copy_(uv[:, None, :, None, 1].expand(blocks))
        chroma_u.view(blocks).copy_(uv[:, None, :, None, 0].expand(blocks))
    if y.dtype != torch.uint8:  # P010/P016: the value is in the top bits
        buf.mul_(1.0 / 256.0)
    buf[1::2].sub_(128.0)
    gain, cr, cgu, cgv, cb = _FULL if full_range else _LIMITED
    if not full_range:
        lum.sub_(16.0).mul_(gain)
    torch.add(lum, chroma_u, alpha=-cgu, out=buf[2]).add_(chroma_v, alpha=-cgv)
    torch.add(lum, chroma_v, alpha=cr, out=chroma_v)
    torch.add(lum, chroma_u, alpha=cb, out=chroma_u)
    # swscale's fixed-point conversion comes out about one level below the exact formula
    # (measured on the real clips: +0.9/+1.4/+0.8 per channel when rounded); floor(x - 0.5)
    # matches it to 0.4 levels on average, at most 2.
    return buf[1:].sub_(0.5).floor_().clamp_(0.0, 255.0)


def resize(torch, rgb, height: int, width: int):
    """(H, W, 3) float32 whole levels at the plan's size: torch's antialiased bicubic, as
    torchvision's resize (the reference's) computes it for a uint8 image."""
    small = torch.nn.functional.interpolate(rgb[None], size=(height, width), mode="bicubic",
                                            antialias=True, align_corners=False)[0]
    return small.round_().clamp_(0.0, 255.0).permute(1, 2, 0)
