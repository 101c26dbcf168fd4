"""Which tensors a scheme quantizes, and the `quantization_config` that tells vLLM so.

The config block is the one llm-compressor writes for `FP8_DYNAMIC` (compressed-tensors'
`ModelCompressor.update_config`: version, quant_method, empty sparsity/transform configs, then the
dumped `QuantizationConfig`), so vLLM's compressed-tensors loader and transformers read our
checkpoints exactly as they read NVIDIA's `quantize_fp8.py` output. It is built from
compressed-tensors' own preset and models, which vLLM ships, rather than typed out by hand.
"""
from __future__ import annotations

import re

SCHEMES = {"fp8-dynamic": "FP8_DYNAMIC"}  # our flag value -> compressed-tensors preset
DEFAULT_SCHEME = "fp8-dynamic"
FORMAT = "float-quantized"

# NVIDIA's recipe (cosmos-reason1/scripts/quantize_fp8.py): never the output head nor the vision
# tower, whose accuracy matters more than its small share of the weights. Both spellings of the
# vision tower's prefix: hub checkpoints say `visual.`, transformers >= 4.52 `model.visual.`.
IGNORE = ["lm_head", "re:visual.*", "re:model.visual.*"]

# The nn.Linear layers of Qwen2.5-VL's language model: compressed-tensors targets "Linear", and
# working on the files (no model is built) these are the Linear weights outside the ignore list.
# Embeddings, norms and biases are not Linear weights and stay as they are.
_LINEAR = re.compile(r"(?:^|\.)layers\.\d+\.(?:self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)"
                     r"\.weight$")


def is_ignored(module: str) -> bool:
    for pattern in IGNORE:
        if pattern.startswith("re:"):
            if re.match(pattern[3:], module):
                return True
        elif module == pattern:
            return True
    return False


def is_target(name: str) -> bool:
    """Whether tensor `name` is the weight of a Linear layer the scheme quantizes."""
    return bool(_LINEAR.search(name)) and not is_ignored(name.rsplit(".", 1)[0])


def quantization_config(scheme: str) -> dict:
    """config.json's `quantization_config` for `scheme`, in llm-compressor's layout."""
    import compressed_tensors
    from compressed_tensors.quantization import (QuantizationConfig, QuantizationStatus,
                                                 preset_name_to_scheme)

    group = preset_name_to_scheme(SCHEMES[scheme], ["Linear"])
    group.format = FORMAT  # llm-compressor names the format per group as well
    config = QuantizationConfig(
        config_groups={"group_0": group}, format=FORMAT, quantization_status=QuantizationStatus.COMPRESSED, ignore=list(IGNORE))
    return {"version": compressed_tensors.__version__, "quant_method": "compressed-tensors",
            "sparsity_config": {}, "transform_config": {},
            **config.model_dump(mode="json", exclude={"quant_method"})}
