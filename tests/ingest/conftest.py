"""Fixtures of the ingestion tests: generated clips (once per session) and settings."""
from __future__ import annotations

from pathlib import Path

import av
import pytest

from app.config import Settings
from tests.ingest import clips as gen

REAL_CLIPS = ("drv_cr1_sample_4fps.mp4", "drv_predict1_dashcam_batch4.mp4",
              "drv_transfer1_av_rgb_dusk_9s.mp4", "phy_moviepy_airplane_failing_audio.mp4",
              "gen_mdn_stream_of_water_cc0.mp4", "edge_moviepy_transparent_vp9_alpha.webm",
              "edge_torchcodec_av1_testsrc.mkv", "edge_torchcodec_hevc_frame_numbers.mp4")


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory) -> Path:
    av.logging.set_level(av.logging.ERROR)  # encoders are chatty
    d = tmp_path_factory.mktemp("clips")
    gen.bframes(d / "bframes.mp4")
    gen.vfr(d / "vfr.mp4")
    for degrees in (90, -90, 180):
        gen.rotated(d / f"rotated{degrees}.mp4", degrees)
    gen.ten_bit_hevc(d / "hevc10.mp4")
    gen.full_range(d / "fullrange.mp4")
    gen.multi_stream(d / "multi.mkv", d)
    gen.recorder_webm(d / "recorder.webm")
    gen.tiny(d / "tiny.mp4")
    gen.uhd(d / "uhd.mp4")
    gen.corrupt(d / "corrupt.mp4", d / "bframes.mp4")
    gen.elementary(d / "elementary.h264")
    gen.audio_only(d / "audio.m4a")
    gen.encode(d / "single.mp4", [gen.barcode(7, 64, 64)])
    (d / "garbage.mp4").write_bytes(bytes(range(256)) * 64)
    return d


@pytest.fixture(scope="session")
def real_clips(media_dir: Path) -> dict[str, Path]:
    return {name: media_dir / name for name in REAL_CLIPS if (media_dir / name).is_file()}


def make_settings(*dirs: Path, **overrides) -> Settings:
    return Settings(allowed_local_media_dirs=tuple(dirs), **overrides)


@pytest.fixture
def settings(clip_dir: Path) -> Settings:
    return make_settings(clip_dir)
