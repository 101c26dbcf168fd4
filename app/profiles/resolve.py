"""Which value of each profile key applies, and where it came from.

Precedence, highest first (documented in docs/profiles.md and tested):

  request fields > COSMOS_* variables / flags set explicitly > the profile (`--profile`, else
  the checkpoint's `cosmos-serve.yaml`) > the checkpoint's `generation_config.json` (sampling
  keys only) > Cosmos-Reason1's defaults (the Settings defaults)

Two keys can contradict each other (a minimum above a maximum, a rate and a frame count): the
value from the higher layer wins and the lower one gives way, which is how the cookbook's
`max_pixels = 81920` lowers qwen-vl-utils' default minimum of 100,352. Two values from the same
layer that contradict each other are an error naming both.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.errors import ConfigError, InvalidRequestError
from app.profiles.model import SAMPLING_KEYS, Profile

log = logging.getLogger(__name__)

LAYERS = ("default", "generation_config", "profile", "settings", "request")
RANK = {name: i for i, name in enumerate(LAYERS)}

# Profile key -> the Settings field that sets it for a deployment (COSMOS_<FIELD>, --flag).
SETTING_OF = {
    "fps": "video_fps", "nframes": "video_nframes", "min_frames": "video_min_frames",
    "max_frames": "video_max_frames", "min_pixels": "video_min_pixels",
    "max_pixels": "video_max_pixels", "total_pixels": "video_total_pixels",
    "system_prompt": "system_prompt", "media_first": "media_first",
    "reasoning": "reasoning_default", "temperature": "default_temperature",
    "top_p": "default_top_p", "top_k": "default_top_k",
    "repetition_penalty": "default_repetition_penalty", "max_tokens": "default_max_tokens",
}
# Profile key -> the request field that overrides it.
REQUEST_OF = {"fps": "video_fps", "nframes": "video_nframes", "min_frames": "video_min_frames",
              "max_frames": "video_max_frames", "min_pixels": "video_min_pixels",
              "max_pixels": "video_max_pixels", "total_pixels": "video_total_pixels",
              "reasoning": "reasoning", "temperature": "temperature", "top_p": "top_p",
              "top_k": "top_k", "repetition_penalty": "repetition_penalty",
              "max_tokens": "max_tokens"}
# generation_config.json key -> profile key (the keys vLLM and NIM read from it).
_GENERATION_KEYS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
                    "repetition_penalty": "repetition_penalty", "max_new_tokens": "max_tokens"}
# (lower, upper) pairs that must be ordered, and the rate pair of which only one applies.
_ORDERED = (("min_pixels", "max_pixels"), ("min_frames", "max_frames"),
            ("min_pixels", "total_pixels"))


def default_layer() -> dict:
    from app.config import Settings

    fields = Settings.model_fields
    return {k: fields[s].default for k, s in SETTING_OF.items() if fields[s].default is not None}


def generation_config_layer(model: str) -> dict:
    """Sampling defaults from a local checkpoint's generation_config.json (as vllm serve and
    NIM apply them); values out of range are ignored with a warning."""
    path = Path(model) / "generation_config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s", path, exc)
        return {}
    out = {}
    for src, key in _GENERATION_KEYS.items():
        if data.get(src) is None:
            continue
        try:
            out[key] = getattr(Profile(**{key: data[src]}), key)
        except ValueError:
            log.warning("ignoring %s: %s=%r is out of range", path, src, data[src])
    return out


@dataclass(frozen=True)
class Resolved:
    """Every profile key's value and the layer it came from."""
    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)
    profile_name: str | None = None

    def __getitem__(self, key: str) -> Any:
        return self.values.get(key)

    def with_request(self, overrides: dict[str, Any]) -> "Resolved":
        """This deployment's values with a request's non-None overrides on top."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if not given:
            return self
        return _settle({**self.values, **given},
                       {**self.sources, **{k: "request" for k in given}},
                       self.profile_name)

    def as_profile(self) -> Profile:
        return Profile(**{k: v for k, v in self.values.items() if v is not None})


def resolve(settings, profile: Profile | None = None, profile_name: str | None = None,
            generation: dict | None = None) -> Resolved:
    """The deployment's layers merged; raises ConfigError naming the settings that clash."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    explicit = settings.model_fields_set
    layers = [("default", default_layer()),
              ("generation_config", {k: v for k, v in (generation or {}).items()
                                     if k in SAMPLING_KEYS}),
              ("profile", profile.given() if profile else {}),
              ("settings", {k: getattr(settings, s) for k, s in SETTING_OF.items()
                            if s in explicit and getattr(settings, s) is not None})]
    for name, layer in layers:
        for k, v in layer.items():
            values[k], sources[k] = v, name
    return _settle(values, sources, profile_name)


def _describe(key: str, source: str) -> str:
    if source == "request":
        return REQUEST_OF.get(key, key)
    if source == "settings":
        return f"{SETTING_OF[key]} (COSMOS_{SETTING_OF[key].upper()})"
    return f"{key} (from the {source.replace('_', ' ')})"


def _clash(key_a: str, key_b: str, sources: dict, message: str) -> Exception:
    a, b = sources.get(key_a, "default"), sources.get(key_b, "default")
    text = f"{_describe(key_a, a)} and {_describe(key_b, b)}: {message}"
    if "request" in (a, b):
        return InvalidRequestError(text, param=REQUEST_OF.get(key_a if a == "request" else key_b))
    return ConfigError(text)


def _settle(values: dict, sources: dict, profile_name: str | None) -> Resolved:
    values, sources = dict(values), dict(sources)
    rank = lambda k: RANK[sources.get(k, "default")]  # noqa: E731
    if values.get("fps") is not None and values.get("nframes") is not None:
        if rank("fps") == rank("nframes"):
            raise _clash("fps", "nframes", sources, "give a frame rate or a frame count, not both")
        loser = "fps" if rank("fps") < rank("nframes") else "nframes"
        values[loser] = None
        sources[loser] = sources["nframes" if loser == "fps" else "fps"]
    for low, high in _ORDERED:
        if values.get(low) is None or values.get(high) is None or values[low] <= values[high]:
            continue
        if rank(low) < rank(high):  # the higher layer's bound wins
            values[low], sources[low] = values[high], sources[high]
        elif rank(high) < rank(low) and high != "total_pixels":
            values[high], sources[high] = values[low], sources[low]
        else:
            raise _clash(low, high, sources,
                         f"the minimum {values[low]} is above the maximum {values[high]}")
    return Resolved(values=values, sources=sources, profile_name=profile_name)
