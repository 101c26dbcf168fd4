"""A contact sheet: every sampled frame, as the model gets it, labelled with its timestamp."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.ingest.types import VideoClip

_THUMB_W = 320
_LABEL_H = 22
_GAP = 4


def contact_sheet(clip: VideoClip, columns: int = 5) -> Image.Image:
    n = clip.num_frames
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    scale = min(1.0, _THUMB_W / clip.resized_width)
    tw, th = max(1, round(clip.resized_width * scale)), max(1, round(clip.resized_height * scale))
    sheet = Image.new("RGB", (columns * (tw + _GAP) + _GAP, rows * (th + _LABEL_H + _GAP) + _GAP),
                      (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i in range(n):
        x = _GAP + (i % columns) * (tw + _GAP)
        y = _GAP + (i // columns) * (th + _LABEL_H + _GAP)
        thumb = Image.fromarray(np.ascontiguousarray(clip.frames[i]))
        if scale < 1.0:
            thumb = thumb.resize((tw, th), Image.Resampling.BILINEAR)
        sheet.paste(thumb, (x, y))
        label = f"{clip.timestamps_s[i]:.3f} s  #{clip.frame_indices[i]}"
        draw.text((x + 2, y + th + 4), label, fill=(235, 235, 235), font=font)
    return sheet


def write_sheet(clip: VideoClip, path: str | Path) -> Path:
    path = Path(path)
    contact_sheet(clip).save(path, format="PNG")
    return path
