"""`cosmos-serve inspect VIDEO`: what the model would see, without starting the engine.

Runs the server's own ingestion (same sampling, sizes and decoder) on a local file or URL and
prints the chosen stream, sampled timestamps and frame indices, resized size, vision tokens,
skipped frames and timings; `--sheet` writes the sampled frames as a labelled contact sheet.
Local paths are read directly: the person running the CLI already has the file.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import urllib.parse

from app.config import Settings
from app.errors import ConfigError, CosmosError
from app.ingest import options as opts
from app.ingest.options import VideoRequestOptions
from app.ingest.pipeline import ingest
from app.ingest.sources import Sources
from app.ingest.types import VideoClip
from app.profiles import deployment_profile
from app.profiles.model import describe


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cosmos-serve inspect",
                                description="Show what the model sees of a video.")
    p.add_argument("video", metavar="VIDEO", help="path, file://, http(s):// or data: URL")
    p.add_argument("--profile", metavar="NAME|FILE",
                   help="model profile (default: COSMOS_PROFILE, else Cosmos-Reason1's)")
    # One flag per request option, from the model the server validates requests with.
    for name, field in VideoRequestOptions.model_fields.items():
        key = name.removeprefix("video_")
        kind = float if key in ("fps", "start", "end") else int
        p.add_argument("--" + key.replace("_", "-"), dest=name, type=kind, metavar=key.upper(),
                       help=describe(field))
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--sheet", metavar="PATH", help="write a contact sheet PNG of the frames")
    return p


def _load(video: str, settings: Settings) -> tuple[str | bytes, float]:
    if video.startswith("file://"):
        return urllib.parse.unquote(urllib.parse.urlparse(video).path), 0.0
    if not video.startswith(("http://", "https://", "data:")):
        return video, 0.0

    async def fetch():
        sources = Sources(settings)
        try:
            return await sources.resolve(video, max_bytes=settings.video_max_bytes,
                                         limit_name="video_max_bytes")
        finally:
            await sources.close()

    media = asyncio.run(fetch())
    return media.load(settings.video_max_bytes, "video_max_bytes"), media.fetch_s


def _text(video: str, clip: VideoClip) -> str:
    r = clip.report()
    lines = [
        f"video          {video}",
        f"stream         #{r['stream_index']} {clip.extra.get('codec', '?')}, "
        f"{r['source_fps']:g} fps, {clip.total_source_frames} frames, {r['duration_s']:.3f} s"
        + (f", rotated {clip.extra['rotation']} deg" if clip.extra.get("rotation") else ""),
        f"sampled        {r['num_frames']} frames, {r['sample_fps']:.4f} fps effective",
        f"resized        {r['resized_width']}x{r['resized_height']} (WxH)",
        f"vision tokens  {r['vision_tokens']}",
        f"skipped        {r['skipped_frames']}",
        f"timestamps s   {' '.join(f'{t:.3f}' for t in r['sampled_timestamps_s'])}",
        f"frame indices  {' '.join(str(i) for i in r['frame_indices'])}",
        f"fetch / decode {r['fetch_s']:.3f} s / {r['decode_s']:.3f} s",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings(**({"profile": args.profile} if args.profile else {}))
        request = {k: getattr(args, k) for k in VideoRequestOptions.model_fields}
        options = opts.build(deployment_profile(settings), opts.request_options(
            {opts.FIELD_TO_KEY[k]: v for k, v in request.items()}))
        source, fetch_s = _load(args.video, settings)
        clip = ingest(source, options, settings)
        clip.fetch_s = fetch_s
    except CosmosError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.sheet:
        from app.ingest.sheet import write_sheet

        write_sheet(clip, args.sheet)
    if args.json:
        print(json.dumps({**clip.report(), **clip.extra}, indent=2))
    else:
        print(_text(args.video, clip))
        if args.sheet:
            print(f"sheet          {args.sheet}")
    return 0
