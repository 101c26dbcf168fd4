"""Image bytes to an RGB PIL image, the way vLLM's own image loader prepares them: a format
allow-list, EXIF orientation applied, transparency composited on white."""
from __future__ import annotations

import contextlib
import io
import warnings

from PIL import Image, ImageOps

from app.errors import MediaError

_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "PPM", "TGA", "ICO", "JPEG2000")


def decode_image(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Pillow warns before it refuses; a warned-about bomb is refused here too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_FORMATS)
            image.load()
    except Exception as exc:  # noqa: BLE001 - Pillow's plugins raise many types on bad input
        raise MediaError(f"not a readable image ({type(exc).__name__}: {exc})") from exc
    with contextlib.suppress(Exception):  # malformed EXIF must not sink a readable image
        image = ImageOps.exif_transpose(image)
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba.getchannel("A"))
    return image.convert("RGB")
