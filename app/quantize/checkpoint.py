"""What SRC is, whether DST may be written, and the files that travel from one to the other.

Every refusal happens here, before a byte is written, and says what to do instead.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

QWEN25_VL = "Qwen2_5_VLForConditionalGeneration"
INDEX = "model.safetensors.index.json"
# Written anew in DST (or replaced by the quantized weights), never copied.
_NOT_COPIED = {"config.json", INDEX}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
# safetensors' names for the dtypes only a quantized checkpoint holds.
_QUANTIZED_DTYPES = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "I8", "U8", "I4", "U4"}


class QuantizeError(Exception):
    """A refusal or failure, with a message meant for the person who ran the command."""


@dataclass(frozen=True)
class Source:
    path: Path
    config: dict
    shards: list[Path]  # safetensors files, in index order

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.shards)


def check_source(src: str | os.PathLike) -> Source:
    path = Path(src).expanduser()
    cfg_path = path / "config.json"
    if not path.is_dir():
        raise QuantizeError(f"SRC {path} is not a directory; give a local checkpoint folder "
                            f"(a hub id must be downloaded first)")
    if not cfg_path.is_file():
        raise QuantizeError(f"SRC {path} has no config.json; it is not a Hugging Face checkpoint")
    try:
        config = json.loads(cfg_path.read_text())
    except ValueError as exc:
        raise QuantizeError(f"{cfg_path} is not valid JSON: {exc}") from None
    archs = config.get("architectures") or []
    if config.get("model_type") != "qwen2_5_vl" and QWEN25_VL not in archs:
        kind = config.get("model_type") or "unknown"
        raise QuantizeError(
            f"SRC {path} is a {kind} checkpoint ({', '.join(archs) or 'no architectures'}); "
            f"cosmos-serve quantize handles Qwen2.5-VL checkpoints (Cosmos-Reason1 and its "
            f"fine-tunes) only")
    qc = config.get("quantization_config")
    if qc:
        method = qc.get("quant_method", "unknown") if isinstance(qc, dict) else qc
        raise QuantizeError(f"SRC {path} is already quantized (quantization_config: {method}); "
                            f"quantize its bf16 original instead")
    shards = _shards(path)
    _refuse_quantized_tensors(path, shards)
    return Source(path=path, config=config, shards=shards)


def _shards(path: Path) -> list[Path]:
    index = path / INDEX
    if index.is_file():
        weight_map = json.loads(index.read_text()).get("weight_map") or {}
        names = list(dict.fromkeys(weight_map.values()))
        missing = [n for n in names if not (path / n).is_file()]
        if missing:
            raise QuantizeError(f"SRC {path}: {INDEX} names shards that are missing: "
                                f"{', '.join(missing)}")
        return [path / n for n in names]
    shards = sorted(path.glob("*.safetensors"))
    if not shards:
        other = sorted(p.name for p in path.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
        hint = f" (it has {', '.join(other)}; re-save it with safe_serialization=True)" if other else ""
        raise QuantizeError(f"SRC {path} has no .safetensors weights{hint}")
    return shards


def _refuse_quantized_tensors(path: Path, shards: list[Path]) -> None:
    """A checkpoint whose config forgot its quantization_config still holds low-bit tensors."""
    from safetensors import safe_open

    for shard in shards:
        with safe_open(shard, framework="pt") as f:
            for name in f.keys():
                dtype = f.get_slice(name).get_dtype()
                if dtype in _QUANTIZED_DTYPES:
                    raise QuantizeError(f"SRC {path} is already quantized: tensor {name} in "
                                        f"{shard.name} is {dtype}; quantize its bf16 original instead")


def check_destination(dst: str | os.PathLike, src: Source) -> Path:
    path = Path(dst).expanduser()
    if path.exists() and not path.is_dir():
        raise QuantizeError(f"DST {path} is a file; give a new or empty folder")
    if path.is_dir() and any(path.iterdir()):
        raise QuantizeError(f"DST {path} is not empty; give a new or empty folder "
                            f"(nothing was written)")
    if path.resolve() == src.path.resolve():
        raise QuantizeError("DST must differ from SRC")
    return path


def copy_side_files(src: Path, out: Path) -> list[str]:
    """Everything but the weights and config.json: tokenizer, processor configs, chat template,
    generation_config.json, cosmos-serve.yaml (the profile), README/LICENSE, so that DST serves
    with no flag. Hidden files (build markers, caches) and folders stay behind."""
    copied = []
    for f in sorted(src.iterdir()):
        if (not f.is_file() or f.name.startswith(".") or f.name in _NOT_COPIED
                or f.name.endswith(_WEIGHT_SUFFIXES)):
            continue
        shutil.copyfile(f, out / f.name)
        copied.append(f.name)
    return copied


def write_config(src: Source, out: Path, quantization_config: dict) -> None:
    config = {**src.config, "quantization_config": quantization_config}
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def publish(tmp: Path, dst: Path) -> None:
    """Move the finished files from the scratch folder into DST, config.json last, so that a
    folder with a config.json is complete."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(tmp.iterdir(), key=lambda p: p.name == "config.json"):
        f.chmod(0o644)  # safetensors writes 0600; a server running as another user must read it
        os.replace(f, dst / f.name)
