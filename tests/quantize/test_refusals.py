"""Every refusal of `cosmos-serve quantize` is exit status 2, a message saying what to do, and
nothing written."""
from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from tests.quantize.conftest import quantize_cli


def refused(r, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith("cosmos-serve quantize: "), r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)


def test_source_that_is_not_qwen25_vl(bf16_src, tmp_path):
    src = tmp_path / "llama"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "llama",
                                                 "architectures": ["LlamaForCausalLM"]}))
    refused(quantize_cli(src, tmp_path / "out"), "llama", "LlamaForCausalLM", "Qwen2.5-VL")
    assert not (tmp_path / "out").exists()


def test_source_that_is_not_a_checkpoint(tmp_path):
    refused(quantize_cli(tmp_path / "missing", tmp_path / "out"), "not a directory")
    (tmp_path / "empty").mkdir()
    refused(quantize_cli(tmp_path / "empty", tmp_path / "out"), "no config.json")


def test_destination_not_empty(bf16_src, tmp_path):
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "notes.txt").write_text("mine")
    refused(quantize_cli(bf16_src, dst), "not empty")
    assert [p.name for p in dst.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["dst"]  # no scratch folder left either


def test_empty_destination_folder_is_used(bf16_src, tmp_path):
    dst = tmp_path / "dst"
    dst.mkdir()
    r = quantize_cli(bf16_src, dst, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (dst / "config.json").is_file() and (dst / "model.safetensors").is_file()


def test_unknown_scheme(bf16_src, tmp_path):
    refused(quantize_cli(bf16_src, tmp_path / "out", "--scheme", "int4-awq"),
            "unknown scheme 'int4-awq'", "fp8-dynamic")
    assert not (tmp_path / "out").exists()


def test_already_quantized_source(fp8_run, tmp_path):
    dst, _ = fp8_run
    refused(quantize_cli(dst, tmp_path / "again"), "already quantized", "compressed-tensors")


def test_fp8_tensors_without_a_quantization_config(fp8_run, tmp_path):
    """A config.json that lost its quantization_config does not hide FP8 tensors."""
    src = tmp_path / "stripped"
    shutil.copytree(fp8_run[0], src)
    cfg = json.loads((src / "config.json").read_text())
    del cfg["quantization_config"]
    (src / "config.json").write_text(json.dumps(cfg))
    refused(quantize_cli(src, tmp_path / "again"), "already quantized", "F8_E4M3")


def test_source_without_safetensors(bf16_src, tmp_path):
    src = tmp_path / "bin"
    src.mkdir()
    shutil.copy(bf16_src / "config.json", src)
    (src / "pytorch_model.bin").write_bytes(b"\0")
    refused(quantize_cli(src, tmp_path / "out"), "no .safetensors", "pytorch_model.bin")


def test_calibration_options_need_calibration(bf16_src, tmp_path):
    refused(quantize_cli(bf16_src, tmp_path / "out", "--num-samples", "8"), "--calibration")


@pytest.mark.skipif(importlib.util.find_spec("llmcompressor") is not None,
                    reason="llm-compressor is installed here")
def test_calibration_without_llmcompressor(bf16_src, tmp_path, media_dir):
    refused(quantize_cli(bf16_src, tmp_path / "out", "--calibration", media_dir),
            "needs llm-compressor", "cosmos-serve[quantize]")
    assert not (tmp_path / "out").exists()


def test_quantize_is_listed_in_the_main_help():
    import subprocess
    import sys

    from tests.conftest import REPO

    r = subprocess.run([sys.executable, "-m", "app", "--help"], cwd=REPO, capture_output=True,
                       text=True, timeout=120)
    assert "quantize" in r.stdout
