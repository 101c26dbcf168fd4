"""The GPU path's colour conversion and resize (app/ingest/gpu_frames.py), run here with torch on the
CPU on real decoded frames: RGB within swscale's rounding of PyAV's own `rgb24` conversion of the
decoder's frames (what the reference decode uses), even and odd frame sizes, limited and full range, and a resize that gives
whole levels."""
from __future__ import annotations

import av
import numpy as np
import pytest
import torch

from app.ingest.gpu_frames import nv12_to_rgb, resize
from tests.conftest import MEDIA


def _frames(path, n=3):
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i >= n:
                return
            yield frame


def _planes(frame: av.VideoFrame):
    nv12 = frame.reformat(format="nv12")
    h, w = nv12.height, nv12.width
    y = np.frombuffer(nv12.planes[0], np.uint8).reshape(h, -1)[:, :w]
    uv = np.frombuffer(nv12.planes[1], np.uint8).reshape((h + 1) // 2, -1)[:, :2 * ((w + 1) // 2)]
    return nv12, torch.from_numpy(y.copy()), torch.from_numpy(uv.copy()).view((h + 1) // 2, -1, 2)


def _convert(nv12, y, uv, full):
    buf = torch.empty((4, *y.shape), dtype=torch.float32)
    return nv12_to_rgb(torch, y, uv, full, buf)


@pytest.mark.parametrize("clip", ["drv_transfer1_av_rgb_dusk_9s.mp4", "drv_cr1_sample_4fps.mp4"])
def test_rgb_within_swscale_rounding_on_real_frames(clip):
    for frame in _frames(MEDIA / clip):
        nv12, y, uv = _planes(frame)
        assert frame.format.name == "yuv420p"  # NVDEC's NV12 holds the same samples
        ours = _convert(nv12, y, uv, False).permute(1, 2, 0).numpy()
        ref = frame.to_ndarray(format="rgb24").astype(np.float32)  # the reference's conversion
        d = np.abs(ours - ref)
        assert d.mean() <= 0.5 and d.max() <= 2, (d.mean(), d.max())


@pytest.mark.parametrize("w,h", [(321, 181), (320, 180)])
def test_odd_and_even_sizes_agree_on_the_shared_area(w, h):
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(img, format="rgb24")
    nv12, y, uv = _planes(frame)
    ours = _convert(nv12, y, uv, False)
    # the reference: chroma repeated over each 2x2 block, then the same formula, element by element
    up = uv.float().repeat_interleave(2, 0).repeat_interleave(2, 1)[:h, :w] - 128.0
    luma = (y.float() - 16.0) * (255.0 / 219.0)
    u, v = up[..., 0], up[..., 1]
    ref = torch.stack((luma + 1.596027 * v, luma - 0.391762 * u - 0.812968 * v, luma + 2.017232 * u))
    ref = ref.sub(0.5).floor().clamp(0, 255)
    assert ours.shape == (3, h, w)
    assert (ours - ref).abs().max() <= 1  # one multiply-add instead of two roundings


def test_full_range_uses_the_full_range_matrix():
    y = torch.full((4, 4), 255, dtype=torch.uint8)
    uv = torch.full((2, 2, 2), 128, dtype=torch.uint8)
    white_full = _convert(None, y, uv, True)
    white_limited = _convert(None, y, uv, False)
    assert white_full.eq(254).all()  # 255 - 0.5 floored: swscale's one level below
    assert white_limited.eq(255).all()  # 255 in limited range is above white: clamped


def test_resize_gives_whole_levels_in_range():
    frame = next(_frames(MEDIA / "drv_transfer1_av_rgb_dusk_9s.mp4"))
    nv12, y, uv = _planes(frame)
    small = resize(torch, _convert(nv12, y, uv, False), 196, 364)
    assert small.shape == (196, 364, 3)
    assert torch.equal(small, small.round()) and small.min() >= 0 and small.max() <= 255
    out = torch.empty((196, 364, 3), dtype=torch.uint8)
    out.copy_(small)
    assert torch.equal(out.float(), small)
