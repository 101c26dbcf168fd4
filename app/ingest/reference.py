"""qwen-vl-utils' own sampling and resizing math, without the torch import that comes with it.

`qwen_vl_utils.vision_process` imports torch, torchvision and requests at module level: 3 s and
about 350 MB of RSS before the first frame, which the `inspect` CLI and a lean decode process
cannot afford. The functions we need are pure Python on `math`, so we compile exactly those
definitions (and the constants they read) from the installed, pinned source file. The code that
runs is qwen-vl-utils' own; tests check it against the normally imported module.

Two pieces of the reference are inline in `fetch_video` rather than functions; they are
reproduced here, each next to the line of the reference it mirrors.
"""
from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import logging
import math
import typing
from pathlib import Path

import numpy as np

PINNED_VERSION = "0.0.14"
_FUNCTIONS = ("round_by_factor", "ceil_by_factor", "floor_by_factor", "smart_resize",
              "smart_nframes", "calculate_video_frame_range")
_CONSTANTS = ("MAX_RATIO", "SPATIAL_MERGE_SIZE", "IMAGE_MIN_TOKEN_NUM", "IMAGE_MAX_TOKEN_NUM",
              "VIDEO_MIN_TOKEN_NUM", "VIDEO_MAX_TOKEN_NUM", "FPS", "FRAME_FACTOR",
              "FPS_MIN_FRAMES", "FPS_MAX_FRAMES")


def _source_path() -> Path:
    spec = importlib.util.find_spec("qwen_vl_utils")  # locates the package without importing it
    if spec is None or spec.origin is None:
        raise ImportError("qwen-vl-utils is not installed (it is a dependency of cosmos-serve)")
    return Path(spec.origin).with_name("vision_process.py")


def _load() -> dict[str, typing.Any]:
    path = _source_path()
    version = importlib.metadata.version("qwen-vl-utils")
    if version != PINNED_VERSION:
        logging.getLogger(__name__).warning(
            "qwen-vl-utils %s installed; sampling math is verified against %s", version,
            PINNED_VERSION)
    tree = ast.parse(path.read_text(), filename=str(path))
    keep = [node for node in tree.body
            if (isinstance(node, ast.FunctionDef) and node.name in _FUNCTIONS)
            or (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id in _CONSTANTS)]
    namespace: dict[str, typing.Any] = {
        "math": math, "logger": logging.getLogger("qwen_vl_utils.vision_process"),
        **{name: getattr(typing, name) for name in ("Any", "Dict", "List", "Optional", "Tuple",
                                                     "Union")}}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), namespace)
    missing = [n for n in _FUNCTIONS + _CONSTANTS if n not in namespace]
    if missing:
        raise ImportError(f"qwen-vl-utils {version} lacks {missing} in {path}")
    return namespace


_NS = _load()
smart_resize = _NS["smart_resize"]
smart_nframes = _NS["smart_nframes"]
calculate_video_frame_range = _NS["calculate_video_frame_range"]
FRAME_FACTOR: int = _NS["FRAME_FACTOR"]
VIDEO_FRAME_MAX_PIXELS: int = _NS["VIDEO_MAX_TOKEN_NUM"] * 28 * 28


def frame_max_pixels(nframes: int, min_pixels: int, max_pixels: int, total_pixels: int) -> int:
    """The per-frame pixel cap `fetch_video` derives from the whole-clip budget:
        max_pixels = max(min(VIDEO_FRAME_MAX_PIXELS, total_pixels / nframes * FRAME_FACTOR),
                         int(min_pixels * 1.05))
        max_pixels = min(ele.get("max_pixels", max_pixels), max_pixels)
    """
    derived = max(min(VIDEO_FRAME_MAX_PIXELS, total_pixels / nframes * FRAME_FACTOR),
                  int(min_pixels * 1.05))
    return min(max_pixels, derived)


def linspace_round(start: int, end: int, steps: int) -> np.ndarray:
    """`torch.linspace(start, end, steps).round().long()` without torch.

    torch computes in float32 as `start + step * i` for the first half and `end - step *
    (steps - 1 - i)` for the second, each a fused multiply-add (one rounding), then rounds
    half to even. The float32 operands' product is exact in float64, so float64 arithmetic
    rounded once to float32 gives the same values (checked against torch in the tests).
    """
    if steps == 1:
        return np.array([start], dtype=np.int64)
    start32, end32 = np.float32(start), np.float32(end)
    step = np.float64(np.float32((end32 - start32) / np.float32(steps - 1)))
    i = np.arange(steps, dtype=np.float64)
    values = np.where(i < steps // 2, np.float64(start32) + step * i,
                      np.float64(end32) - step * (steps - 1 - i)).astype(np.float32)
    return np.rint(values).astype(np.int64)
