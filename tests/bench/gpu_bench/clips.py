"""The clip and its cold variants: the untouched head of a real 1080p clip plus, per variant, its last
GOP re-encoded with a 16x16 marker at a place of its own. Decode cost stays the same, but no processor,
encoder or clip cache can serve one variant from another."""
from __future__ import annotations

import base64
import io
from pathlib import Path


def _annexb_nals(b: bytes) -> list[bytes]:
    starts, i = [], 0
    while (j := b.find(b"\x00\x00\x01", i)) >= 0:
        starts.append(j + 3)
        i = j + 3
    nals = []
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else len(b)
        nal = b[s:e]
        if k + 1 < len(starts):
            nal = nal.rstrip(b"\x00")  # the next start code's leading zero
        nals.append(nal)
    return nals


def x264_params(gop_s: float | None, fps: int = 30) -> dict:
    """Encoder options of a clip: x264's defaults, or a keyframe every `gop_s` seconds at a fixed
    interval (keyint = min-keyint = fps * gop_s, no scene-cut keyframes), as CCTV and dashcam
    encoders write."""
    if not gop_s:
        return {}
    k = round(fps * gop_s)
    return {"x264-params": f"keyint={k}:min-keyint={k}:scenecut=0"}


def make_clip(src: str, out: str, seconds: int = 10, fps: int = 30, gop_s: float | None = None) -> None:
    """A real 10 s 1080p30 H.264 clip: the shared dusk drive (1280x704, 24 fps, 9.7 s) resampled
    by time to 30 fps, played back from its end for the last 0.3 s, upscaled to 1920x1080 and
    encoded with x264's defaults (preset medium, crf 23, B-frames; keyframes at 0 and 250 only), as
    a camera's file would be. `gop_s`: the camera-like variant, same content and settings but a
    keyframe (IDR) every `gop_s` seconds."""
    from fractions import Fraction

    import av

    with av.open(src) as c:
        s = c.streams.video[0]
        rate = float(s.average_rate)
        frames = [f.reformat(1920, 1080, "yuv420p", interpolation="BICUBIC") for f in c.decode(s)]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    tmp = out + ".tmp.mp4"
    with av.open(tmp, "w") as oc:
        st = oc.add_stream("libx264", rate=fps, options=x264_params(gop_s, fps))
        st.width, st.height, st.pix_fmt = 1920, 1080, "yuv420p"
        last = len(frames) - 1
        for i in range(seconds * fps):
            k = int(i / fps * rate)
            k = k if k <= last else 2 * last - k  # mirror past the end
            frame = av.VideoFrame.from_ndarray(frames[k].to_ndarray(), format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for pkt in st.encode(frame):
                oc.mux(pkt)
        for pkt in st.encode():
            oc.mux(pkt)
    Path(tmp).rename(out)
    print(f"wrote {out}: {seconds * fps} frames, {Path(out).stat().st_size} B")


def make_tails(clip: str, n: int, out: str) -> None:
    """Re-encode the clip's last GOP n times, each with a 16x16 luma marker at its own place, with the
    clip's own x264 settings (defaults, crf 23): same parameter sets, same frame types, ~same sizes.
    Stored as AVCC packets (length-prefixed NALs) to splice onto the untouched head of the clip."""
    import av
    import numpy as np

    data = Path(clip).read_bytes()
    src = av.open(io.BytesIO(data))
    stream = src.streams.video[0]
    tb = stream.time_base
    packets = [p for p in src.demux(stream) if p.size]
    k = max(i for i, p in enumerate(packets) if p.is_keyframe)
    k_pts = packets[k].pts
    dec = av.open(io.BytesIO(data))
    tail = [f.to_ndarray(format="yuv420p") for f in dec.decode(video=0) if f.pts >= k_pts]
    h, w = stream.codec_context.height, stream.codec_context.width
    blobs, sizes, pts, dts, key, variant = [], [], [], [], [], []
    for v in range(n):
        oc = av.open(io.BytesIO(), "w", format="mp4")
        st = oc.add_stream("libx264", rate=round(float(stream.average_rate)))
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.codec_context.options = {"crf": "23", "preset": "medium"}
        pk = []
        for i, a in enumerate(tail):
            a = a.copy()
            x = 16 * (v % (w // 16))
            a[0:16, x:x + 16] = (37 * v + 11) % 256
            frame = av.VideoFrame.from_ndarray(a, format="yuv420p")
            frame.pts = i
            pk += st.encode(frame)
        pk += st.encode(None)
        for p in pk:
            etb = p.time_base or st.time_base
            nals = [x for x in _annexb_nals(bytes(p)) if x and (x[0] & 0x1F) not in (6, 7, 8, 9)]
            avcc = b"".join(len(x).to_bytes(4, "big") + x for x in nals)
            blobs.append(avcc)
            sizes.append(len(avcc))
            pts.append(k_pts + int(round(p.pts * etb / tb)))
            dts.append(k_pts + int(round(p.dts * etb / tb)))
            key.append(int(p.is_keyframe))
            variant.append(v)
        oc.close()
        if v % 16 == 15:
            print(f"variant {v}: {len(pk)} packets, {sum(s for s, vv in zip(sizes, variant) if vv == v)} B",
              flush=True)
    np.savez(out, blob=np.frombuffer(b"".join(blobs), dtype=np.uint8), size=np.array(sizes),
             pts=np.array(pts), dts=np.array(dts), key=np.array(key), variant=np.array(variant),
             k_index=np.array(k), k_pts=np.array(k_pts))
    print(f"wrote {out}: {n} variants, {sum(sizes)} B")


class Clips:
    """The clip and its variants (head of the original + one re-encoded last GOP each)."""

    def __init__(self, clip: str, tails: str):
        import numpy as np

        self.data = Path(clip).read_bytes()
        t = np.load(tails)
        self.blob = t["blob"].tobytes()
        self.rows = list(zip(t["size"].tolist(), t["pts"].tolist(), t["dts"].tolist(),
                             t["key"].tolist(), t["variant"].tolist()))
        self.offsets = []
        off = 0
        for size, *_ in self.rows:
            self.offsets.append(off)
            off += size
        self.n = int(t["variant"].max()) + 1
        self._urls: dict[int, str] = {}
        self.gop1s: Clips | None = None  # the camera-like clip's variants, where the run has them

    def variant(self, v: int) -> bytes:
        import av

        src = av.open(io.BytesIO(self.data))
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
        k = max(i for i, p in enumerate(packets) if p.is_keyframe)
        buf = io.BytesIO()
        out = av.open(buf, "w", format="mp4")
        ost = out.add_stream_from_template(stream)
        for p in packets[:k]:
            p.stream = ost
            out.mux(p)
        for (size, pts, dts, key, vv), off in zip(self.rows, self.offsets):
            if vv != v:
                continue
            p = av.Packet(self.blob[off:off + size])
            p.pts, p.dts, p.time_base = pts, dts, stream.time_base
            p.is_keyframe = bool(key)
            p.stream = ost
            out.mux(p)
        out.close()
        src.close()
        return buf.getvalue()

    def url(self, v: int) -> str:
        if v not in self._urls:
            self._urls[v] = "data:video/mp4;base64," + base64.b64encode(self.variant(v)).decode()
        return self._urls[v]


