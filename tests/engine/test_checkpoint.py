"""Checkpoints as training leaves them: checked before vLLM starts, processor borrowed."""
from __future__ import annotations

import json
import shutil

import pytest

from app.engine.checkpoint import prepare_checkpoint
from app.errors import ConfigError


@pytest.fixture
def weights_only(tiny_model, tmp_path):
    d = tmp_path / "ft"
    d.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_model / name, d / name)
    return d


def test_complete_checkpoint_is_served_as_is(tiny_model):
    assert prepare_checkpoint(str(tiny_model), None) == str(tiny_model)


def test_hub_id_is_left_to_vllm():
    assert prepare_checkpoint("nvidia/Cosmos-Reason1-7B", None) == "nvidia/Cosmos-Reason1-7B"


def test_missing_processor_files_are_named(weights_only):
    with pytest.raises(ConfigError) as err:
        prepare_checkpoint(str(weights_only), None)
    text = str(err.value)
    assert "preprocessor_config.json" in text and "tokenizer" in text and "--processor" in text


def test_processor_is_borrowed_through_an_overlay(weights_only, tiny_model, tmp_path):
    path = prepare_checkpoint(str(weights_only), str(tiny_model), overlays=tmp_path / "ov")
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(path)
    assert type(proc).__name__ == "Qwen2_5_VLProcessor"
    ov = tmp_path / "ov"
    served = next(ov.iterdir())
    # the fine-tune's own files win; only what it lacks comes from the base
    assert (served / "model.safetensors").resolve() == (weights_only / "model.safetensors")
    assert (served / "tokenizer.json").resolve() == (tiny_model / "tokenizer.json").resolve()


def test_wrong_architecture_is_named(weights_only):
    cfg = weights_only / "config.json"
    cfg.write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}))
    with pytest.raises(ConfigError, match="LlamaForCausalLM.*Qwen2.5-VL"):
        prepare_checkpoint(str(weights_only), None)


def test_no_weights(weights_only, tiny_model):
    (weights_only / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="no weights"):
        prepare_checkpoint(str(weights_only), None)
    # random weights (benchmarks) need none
    assert prepare_checkpoint(str(weights_only), str(tiny_model), load_format="dummy")


def test_processor_that_lacks_files_too(weights_only, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="--processor .* lacks"):
        prepare_checkpoint(str(weights_only), str(empty))
