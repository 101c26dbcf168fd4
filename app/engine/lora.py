"""LoRA adapters: read and check an adapter directory before any engine sees it.

Teams ship PEFT adapters (LLaMA-Factory, ms-swift, PEFT itself) rather than merged weights. vLLM
applies an adapter's weights only to the modules it wrapped: weights on the vision tower or its
merger are dropped without a word unless tower/connector LoRA is on (vllm#23796), which would
serve a different model than the one trained. So every adapter is read here first: its config
and rank, the tensors that touch the vision side, and its own profile.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from app.errors import ConfigError, LoraAdapterError
from app.profiles import CHECKPOINT_PROFILE
from app.profiles.resolve import Resolved

log = logging.getLogger(__name__)

# vLLM's LoRAConfig.max_lora_rank choices (0.26 and 0.32).
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
ADAPTER_CONFIG = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin", "adapter_model.pt")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]*")
# Qwen2.5-VL's vision tower is `visual.*` (`model.visual.*` in transformers >= 4.52 names);
# the merger (the connector to the language model) is `visual.merger.*`.
_VISION = re.compile(r"(^|\.)visual\.")


@dataclass(frozen=True)
class LoraAdapter:
    name: str
    path: str  # absolute
    rank: int  # the largest rank of any module (rank_pattern included)
    vision_modules: tuple[str, ...]  # modules on the vision tower or merger it adapts
    profile: Resolved | None = None  # from its own cosmos-serve.yaml; None: the base's applies


def parse_lora_module(spec: str) -> tuple[str, str]:
    """`NAME=PATH` -> (name, path); raises ValueError with the expected form."""
    name, sep, path = spec.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise ValueError(f"LoRA adapter {spec!r} is not NAME=PATH (e.g. site-a=/models/lora-a)")
    check_name(name, ValueError)
    return name, path


def check_name(name: str, error: type[Exception] = LoraAdapterError) -> None:
    if not _NAME.fullmatch(name):
        raise error(f"LoRA adapter name {name!r} must be letters, digits and . _ - : / @ +, "
                    f"starting with a letter or digit")


def _tensor_names(path: Path) -> list[str]:
    for file in WEIGHT_FILES:
        weights = path / file
        if not weights.is_file():
            continue
        try:
            if file.endswith(".safetensors"):
                from safetensors import safe_open

                with safe_open(str(weights), framework="pt") as f:
                    return list(f.keys())
            import torch

            return list(torch.load(weights, map_location="meta", weights_only=True, mmap=True))
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise LoraAdapterError(f"cannot read {weights}: {type(exc).__name__}: {exc}",
                                   param="lora_path") from None
    raise LoraAdapterError(f"{path} has no adapter weights ({', '.join(WEIGHT_FILES)})",
                           param="lora_path")


def vision_modules(tensor_names: list[str]) -> tuple[str, ...]:
    """The adapted modules (tensor names without `.lora_A.weight`...) on the vision side."""
    mods = {re.sub(r"\.(lora_[AB]|lora_embedding_[AB]|lora_magnitude_vector)(\.\w+)*$", "", n)
            .removeprefix("base_model.model.") for n in tensor_names if _VISION.search(n)}
    return tuple(sorted(mods))


def _read_config(path: Path) -> dict:
    cfg_path = path / ADAPTER_CONFIG
    if not cfg_path.is_file():
        raise LoraAdapterError(f"{path} has no {ADAPTER_CONFIG}: not a PEFT LoRA adapter "
                               f"directory", param="lora_path")
    try:
        cfg = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise LoraAdapterError(f"{cfg_path} is not readable JSON: {exc}",
                               param="lora_path") from None
    if not isinstance(cfg, dict):
        raise LoraAdapterError(f"{cfg_path} must be a JSON object", param="lora_path")
    kind = cfg.get("peft_type", "LORA")
    if str(kind).upper() != "LORA":
        raise LoraAdapterError(f"{cfg_path}: peft_type {kind!r} is not LORA", param="lora_path")
    unsupported = [what for key, what in (("use_dora", "DoRA"), ("lora_bias", "LoRA bias"))
                   if cfg.get(key)]
    if unsupported:
        raise LoraAdapterError(f"{cfg_path}: {' and '.join(unsupported)} cannot be served "
                               f"by vLLM; merge the adapter into the base instead",
                               param="lora_path")
    return cfg


def _rank(cfg: dict, where: Path) -> int:
    ranks = [cfg.get("r"), *(cfg.get("rank_pattern") or {}).values()]
    if not all(isinstance(r, int) and not isinstance(r, bool) and r > 0 for r in ranks):
        raise LoraAdapterError(f"{where / ADAPTER_CONFIG}: `r` (and every rank_pattern value) "
                               f"must be a positive integer; got {ranks}", param="lora_path")
    return max(ranks)


def read_adapter(name: str, path: str, settings, *, vision_ok: bool) -> LoraAdapter:
    """Check an adapter directory for serving over `settings.model`. Raises LoraAdapterError
    (400 at runtime; a ConfigError at start, see `start_adapters`)."""
    where = Path(path).expanduser()
    if not where.is_dir():
        raise LoraAdapterError(f"LoRA adapter {name!r}: {path} is not a directory",
                               param="lora_path")
    where = where.resolve()
    cfg = _read_config(where)
    rank = _rank(cfg, where)
    if rank > settings.max_lora_rank:
        raise LoraAdapterError(
            f"LoRA adapter {name!r} has rank {rank}, above max_lora_rank "
            f"{settings.max_lora_rank}; start the server with --max-lora-rank "
            f"{min((r for r in LORA_RANKS if r >= rank), default=LORA_RANKS[-1])}",
            param="lora_path")
    vision = vision_modules(_tensor_names(where))
    if vision and not vision_ok:
        shown = ", ".join(vision[:8]) + (f" and {len(vision) - 8} more" if len(vision) > 8
                                         else "")
        raise LoraAdapterError(
            f"LoRA adapter {name!r} has weights on the vision tower or merger, which this server "
            f"would not apply: {shown}. Start the server with --lora-vision-tower on (vLLM's "
            f"tower/connector LoRA), or merge the adapter into the base (peft merge_and_unload)",
            param="lora_path")
    return LoraAdapter(name=name, path=str(where), rank=rank, vision_modules=vision,
                       profile=_own_profile(where, settings))


def _own_profile(where: Path, settings) -> Resolved | None:
    """The adapter's own cosmos-serve.yaml, resolved as the deployment's would be."""
    if not (where / CHECKPOINT_PROFILE).is_file():
        return None
    from app.profiles import deployment_profile

    try:
        # Explicit settings still win over it, and the base's generation_config.json lies under
        # it, exactly as for the base's own profile.
        return deployment_profile(settings.model_copy(
            update={"profile": str(where / CHECKPOINT_PROFILE)}))
    except ConfigError as exc:
        raise LoraAdapterError(str(exc), param="lora_path") from None


def start_adapters(settings) -> tuple[dict[str, LoraAdapter], bool]:
    """The `--lora` adapters, checked, and whether vision-tower LoRA is on (lora_vision_tower:
    `auto` turns it on for an adapter that needs it). Raises ConfigError naming the first
    broken adapter."""
    mode = settings.lora_vision_tower
    adapters: dict[str, LoraAdapter] = {}
    for spec in settings.lora_modules:
        name, path = parse_lora_module(spec)
        if name in (settings.model_name, settings.model):
            raise ConfigError(f"--lora {name}={path}: the name is the base model's; give the "
                              f"adapter a name of its own")
        try:
            adapters[name] = read_adapter(name, path, settings, vision_ok=mode != "off")
        except LoraAdapterError as exc:
            raise ConfigError(f"--lora {name}={path}: {exc.message}") from None
    vision = mode == "on" or (mode == "auto" and any(a.vision_modules for a in adapters.values()))
    if settings.allow_runtime_lora_updating and not settings.api_key:
        log.warning("allow_runtime_lora_updating is on and no api_key is set: anyone who can "
                    "reach this port can load and unload LoRA adapters")
    return adapters, vision


def lora_enabled(settings) -> bool:
    """Adapters at start, or the right to load them later: the engine must reserve LoRA room."""
    return bool(settings.lora_modules) or settings.allow_runtime_lora_updating
