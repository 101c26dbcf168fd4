"""A rank-16 LoRA adapter with random weights for the dummy 7B: `decode_tok_s_lora_r16`.

The GPU machine has no network and its 7B folder no weights, so the adapter is made there: every
projection of the language model (q, k, v, o, gate, up, down in each layer, the targets of the
LoRA recipes teams train with), random bf16 A and B, written with safetensors in PEFT's layout
(`adapter_model.safetensors` + `adapter_config.json`), named as PEFT names them for
transformers >= 4.52 (`base_model.model.model.language_model.layers.N...`). `gpu.py run
--lora-rank 16` makes it before the servers start and serves it next to the base
(`--lora r16=DIR` in ours, `--enable-lora --lora-modules r16=DIR` in vllm serve).

    python tests/bench/gpu_bench/lora_r16.py --model-dir /root/model --out /root/lora_r16
    python tests/bench/gpu_bench/lora_r16.py --tiny      # CPU check on the tiny checkpoint
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "r16"  # the adapter's served name
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# As PEFT writes a regex target: the language model's only (the vision blocks have gate/up/down too).
TARGET_RE = rf".*language_model.*\.({'|'.join(TARGETS)})"


def _text_config(model_dir: Path) -> dict:
    cfg = json.loads((model_dir / "config.json").read_text())
    return {**cfg, **(cfg.get("text_config") or {})}


def shapes(model_dir: Path) -> dict[str, tuple[int, int]]:
    """(in, out) features of every targeted module, by its PEFT name."""
    c = _text_config(model_dir)
    hidden, inter = c["hidden_size"], c["intermediate_size"]
    head_dim = c.get("head_dim") or hidden // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * head_dim, c["num_key_value_heads"] * head_dim
    dims = {"q_proj": (hidden, q), "k_proj": (hidden, kv), "v_proj": (hidden, kv),
            "o_proj": (q, hidden), "gate_proj": (hidden, inter), "up_proj": (hidden, inter),
            "down_proj": (inter, hidden)}
    out = {}
    for layer in range(c["num_hidden_layers"]):
        for t in TARGETS:
            part = "self_attn" if t in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
            out[f"model.language_model.layers.{layer}.{part}.{t}"] = dims[t]
    return out


def make_adapter(model_dir: str | Path, out: str | Path, rank: int = 16, seed: int = 0) -> Path:
    """Write the adapter into `out` (replaced if there); returns its path."""
    import torch
    from safetensors.torch import save_file

    model_dir, out = Path(model_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    tensors = {}
    for module, (n_in, n_out) in shapes(model_dir).items():
        # A as PEFT's kaiming init; B small, so the dummy model's activations stay in range.
        a = torch.randn(rank, n_in, generator=gen) / n_in ** 0.5
        b = torch.randn(n_out, rank, generator=gen) * 1e-3
        tensors[f"base_model.model.{module}.lora_A.weight"] = a.to(torch.bfloat16).contiguous()
        tensors[f"base_model.model.{module}.lora_B.weight"] = b.to(torch.bfloat16).contiguous()
    save_file(tensors, str(out / "adapter_model.safetensors"))
    (out / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank,
        "lora_dropout": 0.0, "bias": "none", "target_modules": TARGET_RE,
        "base_model_name_or_path": str(model_dir), "inference_mode": True}, indent=1) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model-dir", default="/root/model")
    p.add_argument("--out", default="/root/lora_r16")
    p.add_argument("--rank", type=int, default=16)
    p.add_argument("--tiny", action="store_true",
                   help="for the tiny checkpoint (.cache/tiny-model): a check on the CPU")
    a = p.parse_args(argv)
    if a.tiny:
        repo = Path(__file__).resolve().parents[3]
        sys.path.insert(0, str(repo))
        from app.dev.tiny_model import build_tiny_model

        a.model_dir = str(build_tiny_model(repo / ".cache" / "tiny-model"))
        a.out = str(repo / ".cache" / "lora_r16-tiny")
    out = make_adapter(a.model_dir, a.out, a.rank)
    size = (out / "adapter_model.safetensors").stat().st_size
    print(json.dumps({"adapter": str(out), "rank": a.rank, "modules": len(shapes(Path(a.model_dir))),
                      "bytes": size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
