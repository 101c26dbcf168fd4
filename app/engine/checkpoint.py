"""A checkpoint directory as training leaves it, checked before vLLM starts.

Fine-tuning often writes only `config.json` and the weights: the recipe's eval config names a
separate `tokenizer_model_name`. vLLM would fail minutes into its start with a message about a
missing file; we say at once which files are missing. With `--processor DIR`, the processor,
tokenizer and chat template are borrowed from that directory (usually the base model): vLLM
loads all of them from the model path, so the served path is an overlay directory of symlinks,
the checkpoint's own files first.
"""
from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path

from app.errors import ConfigError

log = logging.getLogger(__name__)

ARCHITECTURE = "Qwen2_5_VLForConditionalGeneration"
# Each entry is satisfied by any one of its files.
PROCESSOR_FILES = (("preprocessor_config.json",), ("tokenizer_config.json",),
                   ("tokenizer.json", "vocab.json"))
_TEMPLATE_FILES = ("chat_template.json", "chat_template.jinja")
_BORROWED = ("preprocessor_config.json", "video_preprocessor_config.json",
             "tokenizer_config.json", "tokenizer.json", "vocab.json", "merges.txt",
             "special_tokens_map.json", "added_tokens.json", *_TEMPLATE_FILES)


def _has_template(d: Path) -> bool:
    if any((d / f).is_file() for f in _TEMPLATE_FILES):
        return True
    cfg = d / "tokenizer_config.json"
    return cfg.is_file() and "chat_template" in json.loads(cfg.read_text())


def missing_processor_files(d: Path) -> list[str]:
    missing = [" or ".join(group) for group in PROCESSOR_FILES
               if not any((d / f).is_file() for f in group)]
    if not _has_template(d):
        missing.append("a chat template (chat_template.json, or chat_template in "
                       "tokenizer_config.json)")
    return missing


def check_model_files(d: Path, needs_weights: bool = True) -> None:
    cfg = d / "config.json"
    if not cfg.is_file():
        raise ConfigError(f"{d} has no config.json: not a Hugging Face checkpoint directory")
    config = json.loads(cfg.read_text())
    archs = config.get("architectures") or []
    if ARCHITECTURE not in archs and config.get("model_type") != "qwen2_5_vl":
        raise ConfigError(f"{cfg} names architecture {', '.join(archs) or '(none)'} (model_type "
                          f"{config.get('model_type')!r}); cosmos-serve serves Qwen2.5-VL "
                          f"checkpoints ({ARCHITECTURE}), as Cosmos-Reason1 and its fine-tunes")
    if needs_weights and not any(d.glob("*.safetensors")) and not any(d.glob("*.bin")):
        raise ConfigError(f"{d} has no weights (*.safetensors or *.bin)")


def prepare_checkpoint(model: str, processor: str | None, overlays: Path | None = None,
                       load_format: str = "auto") -> str:
    """The path vLLM should load. A hub id is returned as is (vLLM downloads it). With
    `load_format="dummy"` (random weights, for benchmarks) the folder needs no weights."""
    d = Path(model)
    if not d.is_dir():
        return model
    check_model_files(d, needs_weights=load_format != "dummy")
    missing = missing_processor_files(d)
    if not missing:
        return model
    if processor is None:
        raise ConfigError(f"{d} lacks {'; '.join(missing)}. Fine-tuning often saves only the "
                          f"weights: pass --processor (COSMOS_PROCESSOR) with the base model's "
                          f"directory or id, e.g. --processor nvidia/Cosmos-Reason1-7B")
    source = _processor_dir(processor)
    still = missing_processor_files(source)
    if still:
        raise ConfigError(f"--processor {processor} lacks {'; '.join(still)} too")
    return str(_overlay(d, source, overlays))


def _processor_dir(processor: str) -> Path:
    p = Path(processor)
    if p.is_dir():
        return p
    try:  # a hub id: only the small processor files
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(processor, allow_patterns=list(_BORROWED)))
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, no access
        raise ConfigError(f"--processor {processor}: not a directory, and it could not be "
                          f"fetched from the hub ({type(exc).__name__}: {exc})") from exc


def _overlay(model: Path, source: Path, root: Path | None) -> Path:
    key = hashlib.sha256(f"{model.resolve()}\0{source.resolve()}".encode()).hexdigest()[:16]
    out = (root or Path(tempfile.gettempdir()) / "cosmos-serve-overlays") / key
    out.mkdir(parents=True, exist_ok=True)
    for f in out.iterdir():
        f.unlink()
    for f in model.iterdir():
        (out / f.name).symlink_to(f.resolve())
    borrowed = [f for f in _BORROWED if (source / f).is_file() and not (out / f).exists()]
    for f in borrowed:
        (out / f).symlink_to((source / f).resolve())
    log.info("serving %s with %s borrowed from %s (overlay %s)", model, ", ".join(borrowed),
             source, out)
    return out
