"""LoRA adapters for the tests: real PEFT adapters of the tiny checkpoint (and their merged
twins), and small adapter folders written directly for checks that need no weights that work."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

# The tiny model's module names (transformers >= 4.52): the language model's projections, one
# vision block's attention and the merger's first layer.
LM_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
VISION_TARGETS = r".*visual\.(blocks\.\d+\.attn\.qkv|merger\.mlp\.0)"


def make_peft_adapter(base: Path, out: Path, *, rank: int = 8, vision: bool = False,
                      seed: int = 1, merged: Path | None = None) -> Path:
    """A PEFT LoRA adapter with random A and B (so it changes the output), saved as PEFT saves
    it; with `merged`, the same weights merged into the base (merge_and_unload) are written
    there as a plain checkpoint beside the base's tokenizer and processor files."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(base, dtype=torch.float32)
    targets = f"({LM_TARGETS})|({VISION_TARGETS})" if vision else LM_TARGETS
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank,
                                                  target_modules=targets,
                                                  init_lora_weights=False))
    peft_model.save_pretrained(out)
    if merged is not None:
        peft_model.merge_and_unload().to(torch.bfloat16).save_pretrained(merged)
        for f in base.iterdir():  # tokenizer, processor, chat template, generation config
            if f.is_file() and not (merged / f.name).exists() and f.suffix != ".safetensors":
                shutil.copy(f, merged / f.name)
        shutil.copy(base / "config.json", merged / "config.json")  # the base's flat layout
    return out


def write_adapter(out: Path, modules: list[str], *, rank: int = 8, **config) -> Path:
    """An adapter folder in PEFT's layout with zero weights on `modules` (names as PEFT saves
    them, without `base_model.model.`)."""
    import torch
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for m in modules:
        tensors[f"base_model.model.{m}.lora_A.weight"] = torch.zeros(rank, 128)
        tensors[f"base_model.model.{m}.lora_B.weight"] = torch.zeros(128, rank)
    save_file(tensors, str(out / "adapter_model.safetensors"))
    cfg = {"peft_type": "LORA", "r": rank, "lora_alpha": 2 * rank,
           "target_modules": sorted({m.rsplit(".", 1)[-1] for m in modules}), **config}
    (out / "adapter_config.json").write_text(json.dumps(cfg))
    return out


LM_MODULES = [f"model.language_model.layers.{i}.self_attn.{p}"
              for i in range(2) for p in ("q_proj", "v_proj")]
VISION_MODULES = ["model.visual.blocks.0.attn.qkv", "model.visual.merger.mlp.0"]


if __name__ == "__main__":  # BASE ADAPTER MERGED: test_lora_engine.py's pair, off the test process
    base, adapter, merged = map(Path, sys.argv[1:4])
    make_peft_adapter(base, adapter, vision=True, merged=merged)
