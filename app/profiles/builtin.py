"""Built-in profiles and profile files.

`cosmos-reason1` is the model card's setting, which is also the server's default layer (so it
is built from the Settings defaults, not written twice). `cookbook-sft` is NVIDIA's
intelligent-transportation recipe in cosmos-cookbook (`sft_config.toml` for what the model
sees and how it is asked, `eval_config.yaml` for how it was evaluated).
"""
from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from app.errors import ConfigError
from app.profiles.model import Profile

# The file a checkpoint directory carries to be served as it was trained.
CHECKPOINT_PROFILE = "cosmos-serve.yaml"

# qwen-vl-utils' own default whole-clip budget (VIDEO_TOTAL_PIXELS = 128000 * 28 * 28 * 0.9),
# which applies when a training config names none.
QWEN_VL_UTILS_TOTAL_PIXELS = 90_316_800

COOKBOOK_SFT = Profile(
    fps=1, max_pixels=81_920, total_pixels=QWEN_VL_UTILS_TOTAL_PIXELS,
    system_prompt="You are a helpful assistant that can answer questions about a street-view "
                  "CCTV footage.",
    media_first=True, reasoning=False,
    temperature=0.0, top_p=1.0, top_k=-1, repetition_penalty=1.0, max_tokens=1024)


def cosmos_reason1() -> Profile:
    from app.profiles.resolve import default_layer

    return Profile(**default_layer())


BUILTIN = {"cosmos-reason1": cosmos_reason1, "cookbook-sft": lambda: COOKBOOK_SFT}


def read_profile_file(path: str | Path) -> Profile:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"profile file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"profile file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"profile file {path} must be a mapping of keys to values")
    try:
        return Profile(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "?"
        what = "is not a profile key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"profile file {path}: key {key!r} {what} (keys: "
                          f"{', '.join(Profile.model_fields)})") from exc


def load_profile(name_or_file: str) -> tuple[str, Profile]:
    """A built-in profile by name, or a profile file by path; returns (name, profile)."""
    if name_or_file in BUILTIN:
        return name_or_file, BUILTIN[name_or_file]()
    path = Path(name_or_file)
    if path.is_dir():
        path = path / CHECKPOINT_PROFILE
    if path.suffix in (".yaml", ".yml") or path.exists():
        return str(path), read_profile_file(path)
    raise ConfigError(f"unknown profile {name_or_file!r}: not a built-in "
                      f"({', '.join(BUILTIN)}) and no such file")


def checkpoint_profile(model: str) -> tuple[str, Profile] | None:
    """The profile a local checkpoint directory carries, if any."""
    path = Path(model) / CHECKPOINT_PROFILE
    return (str(path), read_profile_file(path)) if path.is_file() else None
