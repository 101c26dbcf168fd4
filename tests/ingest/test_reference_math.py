"""Our copy-free loading of qwen-vl-utils' math is the real thing, and our torch-free linspace
is torch's, bit for bit."""
from __future__ import annotations

import inspect
import itertools

import numpy as np
import pytest

from app.ingest import reference as ref

vp = pytest.importorskip("qwen_vl_utils.vision_process")
torch = pytest.importorskip("torch")


def test_loaded_functions_are_qwen_vl_utils_source():
    for name in ("smart_resize", "smart_nframes", "calculate_video_frame_range"):
        ours, theirs = getattr(ref, name), getattr(vp, name)
        assert ours.__code__.co_filename == theirs.__code__.co_filename
        assert ours.__code__.co_firstlineno == theirs.__code__.co_firstlineno
        assert inspect.getsource(ours) == inspect.getsource(theirs)


@pytest.mark.parametrize("h,w", [(1080, 1920), (1920, 1080), (50, 50), (2160, 3840), (360, 480),
                                 (704, 1280), (128, 128), (200, 6000)])
@pytest.mark.parametrize("nframes", [2, 4, 20, 38, 120, 768])
def test_smart_resize_matches(h, w, nframes):
    min_px, max_px, total = 128 * 784, 768 * 784, 6_422_528
    cap = ref.frame_max_pixels(nframes, min_px, max_px, total)
    expected_cap = max(min(vp.VIDEO_MAX_TOKEN_NUM * 784, total / nframes * vp.FRAME_FACTOR),
                       int(min_px * 1.05))
    assert cap == min(max_px, expected_cap)
    assert ref.smart_resize(h, w, 28, min_px, cap) == vp.smart_resize(h, w, 28, min_px, cap)


def test_smart_nframes_matches():
    for total, fps, want_fps, lo, hi in itertools.product(
            [2, 3, 10, 59, 60, 150, 233, 18000], [4.0, 24.0, 29.97, 30.0, 60.0],
            [0.5, 2.0, 4.0, 8.0], [2, 4, 7], [8, 768]):
        ele = {"fps": want_fps, "min_frames": lo, "max_frames": hi}
        assert ref.smart_nframes(ele, total, fps) == vp.smart_nframes(ele, total, fps)


def test_frame_range_matches():
    for start, end in [(None, None), (1.0, None), (None, 2.5), (0.3, 4.2), (7.0, 100.0)]:
        ele = {k: v for k, v in (("video_start", start), ("video_end", end)) if v is not None}
        assert (ref.calculate_video_frame_range(ele, 300, 30.0)
                == vp.calculate_video_frame_range(ele, 300, 30.0))


def test_linspace_round_is_torch_bit_exact():
    # Including the near-ties of long videos, where float32 rounding decides the frame.
    for steps in range(2, 800, 3):
        for total in (steps, steps + 1, 150, 233, 1000, 3599, 18000, 36000):
            if total < steps:
                continue
            for start in (0, 3, 17):
                end = start + total - 1
                expected = torch.linspace(start, end, steps).round().long().numpy()
                np.testing.assert_array_equal(ref.linspace_round(start, end, steps), expected)
