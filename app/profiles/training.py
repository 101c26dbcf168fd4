"""`cosmos-serve profile from-training`: a profile from the config a fine-tune was trained with.

cosmos-rl SFT configs (cosmos-cookbook's `sft_config.toml`) name what the model saw in
`[custom.vision]` (qwen-vl-utils' keys) and how it was asked in `custom.dataset.system_prompt`;
cosmos-rl's `create_conversation` puts media before the text and adds no reasoning instruction.
The recipe's `eval_config.yaml` (optional) names how it was evaluated (`generation`).
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from pydantic import ValidationError

from app.errors import ConfigError
from app.profiles.builtin import QWEN_VL_UTILS_TOTAL_PIXELS
from app.profiles.model import VIDEO_KEYS, Profile

_EVAL_KEYS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k",
              "repetition_penalty": "repetition_penalty", "max_tokens": "max_tokens"}


def _section(data: dict, path: Path, *keys: str) -> dict:
    node = data
    for i, key in enumerate(keys):
        node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            raise ConfigError(f"{path}: no [{'.'.join(keys[:i + 1])}] section (a cosmos-rl SFT "
                              f"config names what the model saw in [custom.vision])")
    return node


def _profile(values: dict, path: Path) -> Profile:
    try:
        return Profile(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{path}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from exc


def from_training(config: str | Path, eval_config: str | Path | None = None) -> Profile:
    path = Path(config)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"training config {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"training config {path} is not valid TOML: {exc}") from exc
    vision = _section(data, path, "custom", "vision")
    values = {k: vision[k] for k in VIDEO_KEYS if vision.get(k) is not None}
    if "fps" not in values and "nframes" not in values:
        raise ConfigError(f"{path}: [custom.vision] names neither fps nor nframes")
    values.setdefault("total_pixels", QWEN_VL_UTILS_TOTAL_PIXELS)  # qwen-vl-utils' default
    dataset = _section(data, path, "custom", "dataset")
    values.update(system_prompt=dataset.get("system_prompt", ""), media_first=True,
                  reasoning=False)
    if eval_config is not None:
        values.update(_generation(Path(eval_config)))
    return _profile(values, path)


def _generation(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"eval config {path}: {exc}") from exc
    gen = data.get("generation") if isinstance(data, dict) else None
    if not isinstance(gen, dict):
        raise ConfigError(f"{path}: no `generation` section")
    out = {k: gen[src] for src, k in _EVAL_KEYS.items() if gen.get(src) is not None}
    return out


def dump(profile: Profile) -> str:
    """The profile as a `cosmos-serve.yaml` file."""
    head = "# cosmos-serve model profile: what the model sees and how it is asked.\n"
    return head + yaml.safe_dump(profile.given(), sort_keys=False, allow_unicode=True)
