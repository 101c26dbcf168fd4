"""The model profile: everything that decides what the model sees and how it is asked.

A fine-tune answers best when serving repeats its training: the same frame rate and pixel
budget, the same system prompt, media in the same place in the user turn, the same reasoning
instruction (or none) and the sampling it was evaluated with. A profile names all of that in
one object; every key is optional, and a key a profile leaves out is taken from the next layer
down (see `app/profiles/resolve.py` for the order).

Each option's bound and description is defined once, here, as an annotated type that the
request extensions, the settings and the profile all use.
"""
from __future__ import annotations

import typing
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

FACTOR_PX = 28 * 28  # pixels of one LLM token of a frame

# ------------------------------------------------------------------ one definition per option
Fps = Annotated[float, Field(gt=0, le=60, allow_inf_nan=False, description="Frames sampled per second of video.")]
NFrames = Annotated[int, Field(ge=2, le=768, description=(
    "A fixed number of frames per clip, instead of a rate (rounded to an even count, as "
    "qwen-vl-utils does)."))]
MinFrames = Annotated[int, Field(ge=2, le=768, description="Fewest frames a clip yields.")]
MaxFrames = Annotated[int, Field(ge=2, le=768, description="Most frames a clip yields.")]
MinPixels = Annotated[int, Field(ge=FACTOR_PX, description="Smallest frame size, in pixels.")]
MaxPixels = Annotated[int, Field(ge=FACTOR_PX, description=(
    "Largest frame size, in pixels; below the minimum it lowers the minimum with it, as the "
    "qwen-vl-utils that cosmos-rl trains with does."))]
TotalPixels = Annotated[int, Field(ge=FACTOR_PX, description=(
    "Pixels of all sampled frames together; caps the frame size of long clips."))]
Temperature = Annotated[float, Field(ge=0, le=2, description="Sampling temperature; 0 = greedy.")]
TopP = Annotated[float, Field(gt=0, le=1, description="Nucleus sampling mass.")]
TopK = Annotated[int, Field(ge=-1, description="Top-k sampling; -1 or 0 = off.")]
RepetitionPenalty = Annotated[float, Field(gt=0, le=2, description="vLLM's repetition penalty.")]
MaxTokens = Annotated[int, Field(ge=1, description="Tokens generated at most per answer.")]

VIDEO_KEYS = ("fps", "nframes", "min_frames", "max_frames", "min_pixels", "max_pixels",
              "total_pixels")
PROMPT_KEYS = ("system_prompt", "media_first", "reasoning")
SAMPLING_KEYS = ("temperature", "top_p", "top_k", "repetition_penalty", "max_tokens")


class Profile(BaseModel):
    """A profile file is YAML with exactly these keys (all optional)."""
    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- what the model sees of a video (qwen-vl-utils' keys and meaning)
    fps: Fps | None = None
    nframes: NFrames | None = None
    min_frames: MinFrames | None = None
    max_frames: MaxFrames | None = None
    min_pixels: MinPixels | None = None
    max_pixels: MaxPixels | None = None
    total_pixels: TotalPixels | None = None
    # --- how it is asked
    system_prompt: str | None = Field(None, description=(
        "System prompt used when the request sends none; \"\" sends no system message."))
    media_first: bool | None = Field(None, description=(
        "Put the user turn's videos and images before its text, as cosmos-rl's "
        "create_conversation does; false keeps the request's order."))
    reasoning: bool | None = Field(None, description=(
        "Add Cosmos-Reason1's <think>/<answer> instruction to the system prompt."))
    # --- sampling defaults
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    repetition_penalty: RepetitionPenalty | None = None
    max_tokens: MaxTokens | None = None

    def given(self) -> dict:
        """The keys this profile sets."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


def describe(field) -> str | None:
    """A field's description, also when its type is one of the options above made optional
    (`Fps | None` keeps the description inside the union)."""
    if field.description:
        return field.description
    for arg in typing.get_args(field.annotation):
        for meta in getattr(arg, "__metadata__", ()):
            if getattr(meta, "description", None):
                return meta.description
    return None
