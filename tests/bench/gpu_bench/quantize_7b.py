"""Time `cosmos-serve quantize` (fp8-dynamic) on a 7B-sized checkpoint: `quantize_s` and sizes.

On the GPU machine (Python 3.12, torch, transformers, safetensors and compressed-tensors as
vLLM brings them, no network), from the repository root:

    python tests/bench/gpu_bench/quantize_7b.py --model-dir /root/model --work /root/q7b

`/root/model` is the Qwen2.5-VL-7B-shaped folder with no weights (../shared/gpu/README.md). The
script gives it random bf16 weights - every tensor of the architecture, named as the hub's
Cosmos-Reason1-7B names them (`model.layers.*`, `visual.*`, `lm_head`), in 5 GB shards with an
index, as `save_pretrained` writes them - then runs `python -m app quantize SRC DST --json` and
writes `$OUT/quantize_7b.json` (or --out). DST (`WORK/fp8`) is left for serving:
`cosmos-serve serve --model WORK/fp8`. `--tiny` does the same on the tiny checkpoint's config
(CPU, seconds): the check that the script runs end to end.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SHARD_BYTES = 5 * 10**9  # transformers' default max_shard_size ("5GB")
WEIGHT_FILES = (".safetensors", ".bin")


def hub_name(name: str) -> str:
    """transformers >= 4.52 module names -> the names in Cosmos-Reason1-7B's safetensors."""
    for new, old in (("model.language_model.", "model."), ("model.visual.", "visual.")):
        if name.startswith(new):
            return old + name[len(new):]
    return name


def architecture(model_dir: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Every parameter of the checkpoint's model: name -> (shape, kind), built on the meta
    device (no memory)."""
    import torch
    from transformers import AutoConfig, Qwen2_5_VLForConditionalGeneration

    config = AutoConfig.from_pretrained(model_dir)
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    tied = bool(getattr(config, "tie_word_embeddings", False)
                or getattr(config.get_text_config(), "tie_word_embeddings", False))
    out = {}
    for name, p in model.state_dict().items():
        if tied and name == "lm_head.weight":
            continue
        kind = "norm" if name.endswith("weight") and p.dim() == 1 else (
            "bias" if name.endswith("bias") else "weight")
        out[hub_name(name)] = (tuple(p.shape), kind)
    return out


def write_random_checkpoint(model_dir: Path, src: Path, seed: int = 0) -> dict:
    """SRC = model_dir's config, tokenizer and processor files plus random bf16 weights."""
    import torch
    from safetensors.torch import save_file

    src.mkdir(parents=True)
    for f in model_dir.iterdir():
        if f.is_file() and not f.name.startswith(".") and not f.name.endswith(WEIGHT_FILES) \
                and f.name != "model.safetensors.index.json":
            shutil.copyfile(f, src / f.name)
    params = architecture(model_dir)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device=device).manual_seed(seed)
    shards: list[dict] = [{}]
    size = 0
    for name, (shape, kind) in params.items():
        nbytes = 2 * int(torch.Size(shape).numel())
        if size and size + nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][name] = (shape, kind)
        size += nbytes
    weight_map, total = {}, 0
    started = time.perf_counter()
    for i, shard in enumerate(shards, 1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        tensors = {}
        for name, (shape, kind) in shard.items():
            if kind == "norm":
                t = torch.ones(shape, dtype=torch.bfloat16)
            else:  # the scale of a trained Qwen2.5 Linear layer's weights
                t = (torch.randn(shape, generator=gen, device=device, dtype=torch.bfloat16)
                     .mul_(0.02).cpu())
            tensors[name] = t
            weight_map[name] = fname
            total += t.numel() * t.element_size()
        save_file(tensors, str(src / fname), metadata={"format": "pt"})
    (src / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    return {"gen_s": round(time.perf_counter() - started, 1), "shards": len(shards),
            "tensors": len(params), "device": device}


def tiny_template(work: Path) -> Path:
    sys.path.insert(0, str(REPO))
    from app.dev.tiny_model import build_tiny_model

    return build_tiny_model(work / "tiny-template")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model-dir", type=Path, default=Path("/root/model"),
                    help="folder with config.json, tokenizer and processor files (weights ignored)")
    ap.add_argument("--work", type=Path, default=Path("/root/q7b"),
                    help="where SRC (WORK/bf16) and DST (WORK/fp8) are written; emptied first")
    ap.add_argument("--tiny", action="store_true",
                    help="the tiny checkpoint's config instead of --model-dir (CPU check)")
    ap.add_argument("--out", type=Path, default=None,
                    help="result JSON (default $OUT/quantize_7b.json, else WORK/quantize_7b.json)")
    ap.add_argument("--device", default="auto", help="passed to cosmos-serve quantize")
    args = ap.parse_args()

    shutil.rmtree(args.work / "bf16", ignore_errors=True)
    shutil.rmtree(args.work / "fp8", ignore_errors=True)
    args.work.mkdir(parents=True, exist_ok=True)
    model_dir = tiny_template(args.work) if args.tiny else args.model_dir
    src, dst = args.work / "bf16", args.work / "fp8"
    made = write_random_checkpoint(model_dir, src)
    print(f"random bf16 checkpoint: {made['tensors']} tensors in {made['shards']} shards, "
          f"{made['gen_s']} s on {made['device']}", flush=True)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    started = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "app", "quantize", str(src), str(dst), "--json",
                        "--no-progress", "--device", args.device], cwd=REPO, env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - started
    if r.returncode != 0:
        print(r.stdout[-4000:], r.stderr[-6000:], sep="\n", file=sys.stderr)
        return r.returncode
    summary = json.loads(r.stdout)
    result = {
        "model": "tiny" if args.tiny else str(args.model_dir), "scheme": summary["scheme"],
        "quantize_s": summary["seconds"], "quantize_wall_s": round(wall, 1),
        "device": summary["device"], "bf16_bytes": summary["bytes_before"],
        "fp8_bytes": summary["bytes_after"],
        "size_ratio": round(summary["bytes_after"] / summary["bytes_before"], 4),
        "tensors": summary["tensors"], "tensors_quantized": summary["tensors_quantized"],
        "kept": summary["kept"], "random_weights": made, "dst": str(dst),
    }
    out = args.out or Path(os.environ.get("OUT") or args.work) / "quantize_7b.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    print(f"{'quantize_s':<18}{result['quantize_s']:>10.1f}   (wall {result['quantize_wall_s']} s, "
          f"{result['device']})")
    print(f"{'bf16 checkpoint':<18}{result['bf16_bytes'] / 1e9:>10.2f} GB")
    print(f"{'fp8 checkpoint':<18}{result['fp8_bytes'] / 1e9:>10.2f} GB   "
          f"({result['size_ratio']:.2f}x, {result['tensors_quantized']} of {result['tensors']} "
          f"tensors FP8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
