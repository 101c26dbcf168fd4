"""A clip's frames handed from a decode process to the server without a pickle or a file.

The decode process writes the frames into an anonymous memory file (memfd) and passes its
descriptor over the process pair's Unix socket; the server maps it and wraps the mapping as the
clip's array, which keeps the mapping alive and unmaps it when the last view goes. Nothing
touches /dev/shm, which a container caps at 64 MB by default (a burst holds 32 clips of 9-37 MB),
and nothing is left behind if either process dies: the memory goes with the last descriptor or
mapping.
"""
from __future__ import annotations

import mmap
import os

import numpy as np


def write(frames: np.ndarray) -> int:
    """A memfd holding `frames`' bytes (C order); the caller sends and closes it."""
    fd = os.memfd_create("cosmos-frames", os.MFD_CLOEXEC)
    try:
        size = max(1, frames.nbytes)  # mmap refuses a length of 0
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size) as mm:
            view = np.ndarray(frames.shape, dtype=frames.dtype, buffer=mm)
            np.copyto(view, frames)
            del view  # the mapping cannot close while an array exports it
    except BaseException:
        os.close(fd)
        raise
    return fd


def read(fd: int, shape: tuple[int, ...], dtype: str = "uint8") -> np.ndarray:
    """The frames in the memfd `fd` (which this closes), without a copy. Writable, as a decoded
    clip's frames always were (the mapping is this clip's alone once the decoder closed it)."""
    try:
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        mm = mmap.mmap(fd, max(1, size))
    finally:
        os.close(fd)
    return np.frombuffer(mm, dtype=dtype, count=int(np.prod(shape))).reshape(shape)
