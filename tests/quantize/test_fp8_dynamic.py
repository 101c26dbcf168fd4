"""`cosmos-serve quantize SRC DST` (fp8-dynamic) on the tiny checkpoint, read back from the files."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tests.quantize.conftest import PROFILE, quantize_cli

LM_LINEAR = re.compile(r"^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$")


def tensors(folder: Path) -> dict[str, torch.Tensor]:
    out = {}
    for shard in sorted(folder.glob("*.safetensors")):
        out.update(load_file(shard))
    return out


def test_config_names_scheme_and_ignored_modules(fp8_run):
    dst, _ = fp8_run
    qc = json.loads((dst / "config.json").read_text())["quantization_config"]
    assert qc["quant_method"] == "compressed-tensors"
    assert qc["format"] == "float-quantized" and qc["quantization_status"] == "compressed"
    group = qc["config_groups"]["group_0"]
    assert group["targets"] == ["Linear"]
    assert {k: group["weights"][k] for k in ("type", "num_bits", "strategy", "dynamic", "symmetric")} \
        == {"type": "float", "num_bits": 8, "strategy": "channel", "dynamic": False, "symmetric": True}
    acts = group["input_activations"]
    assert (acts["type"], acts["num_bits"], acts["strategy"], acts["dynamic"]) == ("float", 8, "token", True)
    assert qc["ignore"] == ["lm_head", "re:visual.*", "re:model.visual.*"]


def test_vllm_compressed_tensors_loader_reads_the_config(fp8_run):
    from vllm.model_executor.layers.quantization.compressed_tensors.compressed_tensors import \
        CompressedTensorsConfig

    dst, _ = fp8_run
    qc = json.loads((dst / "config.json").read_text())["quantization_config"]
    cfg = CompressedTensorsConfig.from_config(qc)
    scheme = cfg.target_scheme_map["Linear"]
    assert CompressedTensorsConfig._is_fp8_w8a8(scheme["weights"], scheme["input_activations"])
    assert cfg.ignore == ["lm_head", "re:visual.*", "re:model.visual.*"]


def test_linear_weights_are_fp8_with_per_channel_scales(bf16_src, fp8_run):
    dst, summary = fp8_run
    src, out = tensors(bf16_src), tensors(dst)
    targets = [n for n in src if LM_LINEAR.match(n)]
    config = json.loads((bf16_src / "config.json").read_text())
    assert len(targets) == config["num_hidden_layers"] * 7 == summary["tensors_quantized"]
    for name in targets:
        assert out[name].dtype == torch.float8_e4m3fn, name
        scale = out[name[: -len("weight")] + "weight_scale"]
        assert scale.shape == (src[name].shape[0], 1) and scale.dtype == torch.bfloat16, name
    # everything else - vision tower, embeddings (tied lm_head), norms, biases - is byte-identical
    kept = [n for n in src if n not in targets]
    assert any(n.startswith("visual.") for n in kept)
    for name in kept:
        assert out[name].dtype == src[name].dtype == torch.bfloat16 and torch.equal(out[name], src[name]), name
    assert set(out) == set(src) | {n[: -len("weight")] + "weight_scale" for n in targets}


def test_dequantized_weights_are_close_to_the_originals(bf16_src, fp8_run):
    """Tolerance, element by element: |w - q*s| <= |w|/16 + s/1024. E4M3 keeps 3 mantissa bits
    (rounding error at most 1/16 of the value in its normal range) and its subnormal step is
    2^-9, so half of it times the scale bounds the error near zero; clipping the row maximum
    after the scale's rounding to bf16 costs at most 2^-8 of the value, inside the first term."""
    dst, _ = fp8_run
    src, out = tensors(bf16_src), tensors(dst)
    for name in (n for n in src if LM_LINEAR.match(n)):
        w = src[name].float()
        s = out[name[: -len("weight")] + "weight_scale"].float()
        deq = out[name].float() * s
        bound = w.abs() / 16 + s / 1024
        assert bool(((w - deq).abs() <= bound).all()), name
        rel = float((w - deq).norm() / w.norm())
        assert 0 < rel < 0.04, (name, rel)  # quantized (not copied), and to FP8's precision


def test_transformers_loads_the_checkpoint_and_its_logits_follow_bf16(bf16_src, fp8_run):
    """transformers' compressed-tensors loader (a second reader of the format) runs DST; its
    logits stay within 15% (relative L2) of the bf16 model's on 32 random tokens. The tiny
    model's random weights and FP8 activations give ~6% here."""
    from transformers import Qwen2_5_VLForConditionalGeneration as Model

    dst, _ = fp8_run
    ids = torch.randint(0, 150000, (1, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = Model.from_pretrained(bf16_src, dtype=torch.bfloat16)(input_ids=ids).logits.float()
        got = Model.from_pretrained(dst, dtype=torch.bfloat16)(input_ids=ids).logits.float()
    rel = float((got - ref).norm() / ref.norm())
    assert 0 < rel < 0.15, rel


def test_side_files_and_profile_are_copied(bf16_src, fp8_run):
    dst, summary = fp8_run
    for name in ("cosmos-serve.yaml", "generation_config.json", "tokenizer.json",
                 "tokenizer_config.json", "chat_template.json", "preprocessor_config.json",
                 "video_preprocessor_config.json"):
        assert (dst / name).read_bytes() == (bf16_src / name).read_bytes(), name
        assert name in summary["copied"]
    assert (dst / "cosmos-serve.yaml").read_text() == PROFILE
    assert not (dst / ".cosmos-tiny-model").exists()  # hidden build markers stay behind
    assert not [p for p in dst.parent.iterdir() if ".partial-" in p.name]


def test_summary_counts_and_sizes(bf16_src, fp8_run):
    dst, summary = fp8_run
    assert summary["bytes_before"] == (bf16_src / "model.safetensors").stat().st_size
    assert summary["bytes_after"] == (dst / "model.safetensors").stat().st_size
    assert summary["bytes_after"] < summary["bytes_before"]
    with safe_open(bf16_src / "model.safetensors", "pt") as f:
        n_visual = sum(k.startswith("visual.") for k in f.keys())
        n_all = len(list(f.keys()))
    assert summary["kept"]["vision tower"] == n_visual
    assert summary["tensors"] == n_all
    assert summary["method"] == "no calibration" and summary["scheme"] == "fp8-dynamic"


def test_sharded_source_keeps_its_shards_and_index(bf16_src, tmp_path):
    """A checkpoint in several files (as the 7B is) comes out in the same files, with an index
    that maps every tensor, scales included, and the new total size."""
    src = tmp_path / "sharded"
    src.mkdir()
    for f in bf16_src.iterdir():
        if f.name != "model.safetensors":
            (src / f.name).write_bytes(f.read_bytes())
    state = load_file(bf16_src / "model.safetensors")
    names = sorted(state)
    shards = {"model-00001-of-00003.safetensors": names[0::3],
              "model-00002-of-00003.safetensors": names[1::3],
              "model-00003-of-00003.safetensors": names[2::3]}
    weight_map = {}
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, src / shard, metadata={"format": "pt"})
        weight_map.update({k: shard for k in keys})
    (src / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": sum(t.nbytes for t in state.values())}, "weight_map": weight_map}))

    dst = tmp_path / "out"
    r = quantize_cli(src, dst, "--no-progress")
    assert r.returncode == 0, r.stderr[-3000:]
    assert sorted(p.name for p in dst.glob("*.safetensors")) == sorted(shards)
    index = json.loads((dst / "model.safetensors.index.json").read_text())
    out = {}
    for shard in shards:
        with safe_open(dst / shard, "pt") as f:
            for k in f.keys():
                assert index["weight_map"][k] == shard
                out[k] = f.get_tensor(k)
    assert set(index["weight_map"]) == set(out)
    assert index["metadata"]["total_size"] == sum(t.nbytes for t in out.values())
    scales = [k for k in out if k.endswith("weight_scale")]
    assert len(scales) == sum(bool(LM_LINEAR.match(n)) for n in names)
    for k in scales:  # a weight and its scale share a file, as vLLM's loader reads them
        assert index["weight_map"][k] == index["weight_map"][k[: -len("_scale")]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_and_cpu_write_the_same_weights(bf16_src, fp8_run, tmp_path):
    r = quantize_cli(bf16_src, tmp_path / "gpu", "--device", "cuda", "--no-progress")
    assert r.returncode == 0, r.stderr
    cpu, gpu = tensors(fp8_run[0]), tensors(tmp_path / "gpu")
    assert all(torch.equal(cpu[k].view(torch.uint8) if cpu[k].dtype == torch.float8_e4m3fn else cpu[k],
                           gpu[k].view(torch.uint8) if gpu[k].dtype == torch.float8_e4m3fn else gpu[k])
               for k in cpu)
