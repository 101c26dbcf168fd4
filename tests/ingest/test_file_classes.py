"""Every file class a user can upload, one real or generated file each."""
from __future__ import annotations

import av
import numpy as np
import pytest

from app.errors import MediaError
from app.ingest import decode as decode_mod
from app.ingest.pipeline import ingest
from app.ingest.options import default_options
from app.ingest.types import VideoOptions
from tests.ingest.clips import read_barcode

COSMOS = default_options()


def codes(clip) -> list[int]:
    return [read_barcode(f) for f in clip.frames]


def run(path, settings, **options):
    return ingest(str(path), default_options(**options), settings)


def count_decoded(monkeypatch) -> list[int]:
    """Spy on how many frames the decoder hands back (skipped frames never come out)."""
    seen: list[int] = []
    take = decode_mod.Sink.take

    def spy(self, key, frame):
        seen.append(key)
        take(self, key, frame)

    monkeypatch.setattr(decode_mod.Sink, "take", spy)
    return seen


def test_bframes_out_of_order_pick_the_right_frames(clip_dir, settings, monkeypatch):
    with av.open(str(clip_dir / "bframes.mp4")) as c:
        pts = [p.pts for p in c.demux(video=0) if p.size]
    assert pts != sorted(pts), "the clip must store frames out of presentation order"
    decoded = count_decoded(monkeypatch)
    clip = run(clip_dir / "bframes.mp4", settings)
    assert codes(clip) == clip.frame_indices
    assert len(decoded) < 60, "unwanted non-reference B-frames must not be decoded"


@pytest.mark.parametrize("name", ["bframes.mp4", "hevc10.mp4"])
def test_skipping_changes_no_pixel(clip_dir, settings, monkeypatch, name):
    skipped = run(clip_dir / name, settings)
    monkeypatch.setattr(decode_mod, "_NONREF_SKIPPERS", set())  # decode every frame
    everything = run(clip_dir / name, settings)
    assert skipped.frame_indices == everything.frame_indices
    np.testing.assert_array_equal(skipped.frames, everything.frames)


def test_late_start_skips_earlier_groups(clip_dir, settings, monkeypatch):
    decoded = count_decoded(monkeypatch)
    clip = run(clip_dir / "bframes.mp4", settings, start_s=2.1)
    assert codes(clip) == clip.frame_indices
    assert min(clip.frame_indices) >= 63
    assert len(decoded) <= 30, "frames before the keyframe at 2 s must not be decoded"


def test_variable_frame_rate_sampled_by_time(clip_dir, settings):
    clip = run(clip_dir / "vfr.mp4", settings)  # 2 s at 5 fps, then 2 s at 30 fps
    assert codes(clip) == clip.frame_indices
    t = np.array(clip.timestamps_s)
    target = np.linspace(0, t[-1], len(t))
    # Each sample is the frame nearest its evenly spaced instant (5 fps: within 0.1 s).
    assert np.abs(t - target).max() <= 0.1 + 1e-6
    # Index-based sampling would give the first, sparse half only 3 of the 16 frames.
    assert (t < 2.0).sum() >= 7


@pytest.mark.parametrize("degrees", [90, -90, 180])
def test_display_matrix_rotation(clip_dir, settings, degrees):
    clip = run(clip_dir / f"rotated{degrees}.mp4", settings)
    assert clip.resized_height > clip.resized_width, "a portrait clip comes out portrait"
    h, w = clip.resized_height, clip.resized_width
    corner = clip.frames[0][: h * 50 // 320, : w * 30 // 176]
    assert corner[..., 0].mean() > 200 and corner[..., 1].mean() < 60, "red block top-left"


def test_ten_bit_hevc(clip_dir, settings):
    with av.open(str(clip_dir / "hevc10.mp4")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
    clip = run(clip_dir / "hevc10.mp4", settings)
    assert clip.extra["codec"] == "hevc" and codes(clip) == clip.frame_indices


def test_full_range_yuvj(clip_dir, settings):
    with av.open(str(clip_dir / "fullrange.mp4")) as c:
        assert c.streams.video[0].codec_context.color_range == 2  # JPEG / full
    clip = run(clip_dir / "fullrange.mp4", settings)
    assert abs(float(clip.frames.mean()) - 192) < 3, "read as limited range it is ~205"


def test_default_stream_of_several_audio_and_subtitles_ignored(clip_dir, settings):
    with av.open(str(clip_dir / "multi.mkv")) as c:
        kinds = [s.type for s in c.streams]
    assert kinds == ["video", "video", "audio", "subtitle"]
    clip = run(clip_dir / "multi.mkv", settings)
    assert clip.stream_index == 1
    assert codes(clip) == clip.frame_indices  # the small first stream shows 255 throughout


def test_mediarecorder_webm_without_duration_or_count(clip_dir, settings):
    with av.open(str(clip_dir / "recorder.webm")) as c:
        assert c.duration is None and c.streams.video[0].frames == 0
    clip = run(clip_dir / "recorder.webm", settings)
    assert clip.total_source_frames == 45
    assert clip.duration_s == pytest.approx(45 / clip.source_fps)
    assert codes(clip) == clip.frame_indices
    assert clip.num_frames == 6


def test_interrupted_upload_decodes_what_arrived(clip_dir, settings, tmp_path):
    data = (clip_dir / "recorder.webm").read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(data[: len(data) // 2])
    clip = run(cut, settings)
    assert 10 < clip.total_source_frames < 45
    assert codes(clip) == clip.frame_indices


def test_tiny_frames_upscaled_to_min_pixels(clip_dir, settings):
    clip = run(clip_dir / "tiny.mp4", settings)
    assert (clip.resized_height, clip.resized_width) == (336, 336)
    assert codes(clip) == clip.frame_indices


def test_uhd_frames_capped_per_frame(clip_dir, settings):
    clip = run(clip_dir / "uhd.mp4", settings)
    assert clip.resized_height * clip.resized_width <= 768 * 28 * 28
    assert codes(clip) == clip.frame_indices


def test_corrupt_middle_decodes_the_rest_and_counts(clip_dir, settings):
    clip = run(clip_dir / "corrupt.mp4", settings)
    assert clip.num_frames == 12
    assert clip.skipped_frames > 0 and clip.extra["damaged_packets"] > 0
    assert codes(clip)[:3] == clip.frame_indices[:3]


@pytest.mark.parametrize("name,message", [("garbage.mp4", "not a readable video"),
                                          ("audio.m4a", "no video stream")])
def test_nothing_decodable_is_a_400(clip_dir, settings, name, message):
    with pytest.raises(MediaError, match=message) as err:
        run(clip_dir / name, settings)
    assert err.value.status_code == 400


def test_elementary_stream_without_timestamps(clip_dir, settings):
    clip = run(clip_dir / "elementary.h264", settings)
    assert clip.total_source_frames == 30 and codes(clip) == clip.frame_indices


def test_single_frame_becomes_one_temporal_patch(clip_dir, settings):
    clip = run(clip_dir / "single.mp4", settings)
    assert clip.num_frames == 2 and codes(clip) == [7, 7]


@pytest.mark.parametrize("name,codec,frames", [
    ("edge_torchcodec_av1_testsrc.mkv", "libdav1d", 20),
    ("edge_moviepy_transparent_vp9_alpha.webm", "vp9", 20),
    ("edge_torchcodec_hevc_frame_numbers.mp4", "hevc", 4)])
def test_real_edge_codecs(real_clips, settings, name, codec, frames):
    if name not in real_clips:
        pytest.skip(f"{name} missing")
    clip = ingest(str(real_clips[name]), COSMOS, settings)
    assert clip.extra["codec"] == codec and clip.num_frames == frames
    assert clip.skipped_frames == 0 and clip.frames.std() > 1


@pytest.mark.parametrize("name", ["bframes.mp4", "recorder.webm", "multi.mkv"])
def test_damaged_files_never_escape_as_500(clip_dir, settings, tmp_path, name):
    """Random byte damage and truncation: a clip or a 400, never another exception."""
    data = (clip_dir / name).read_bytes()
    rng = np.random.default_rng(0)
    outcomes = set()
    for trial in range(12):
        damaged = bytearray(data)
        if trial % 3 == 2:
            damaged = damaged[: int(rng.integers(16, len(data)))]
        else:
            at = rng.integers(0, len(data), size=int(rng.integers(1, 64)))
            damaged_bytes = rng.integers(0, 256, size=len(at), dtype=np.uint8)
            for i, b in zip(at.tolist(), damaged_bytes.tolist()):
                damaged[i] = b
        path = tmp_path / f"{trial}{(clip_dir / name).suffix}"
        path.write_bytes(bytes(damaged))
        try:
            clip = ingest(str(path), COSMOS, settings)
            assert clip.num_frames % 2 == 0 and clip.frames.dtype == np.uint8
            outcomes.add("clip")
        except MediaError as exc:
            assert exc.status_code == 400
            outcomes.add("400")
    assert "clip" in outcomes
