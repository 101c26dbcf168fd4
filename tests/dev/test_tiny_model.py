"""The tiny checkpoint must look like Qwen2.5-VL / Cosmos-Reason1 to every client-visible check.

Built once per module into a temporary folder (about 10 s); loading it needs only transformers.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from app.dev.tiny_model import MARKER, QWEN2_PATTERN, build_tiny_model, tiktoken_file

REAL_SPECIAL_IDS = {
    "<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645,
    "<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|vision_pad|>": 151654,
    "<|image_pad|>": 151655, "<|video_pad|>": 151656, "<tool_call>": 151657, "<|file_sep|>": 151664,
}
SAMPLES = ["Hello world", "The car brakes at 12345 km/h — naïve 日本語\n\n  x=1;", "I'm sure you'll see 3.14!"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def test_special_tokens_at_real_ids(tokenizer):
    for token, token_id in REAL_SPECIAL_IDS.items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id, token
    assert len(tokenizer) == 151665
    assert tokenizer.eos_token_id == 151645 and tokenizer.pad_token_id == 151643
    # Special tokens in user text must map to one id each, as in the real tokenizer.
    assert tokenizer.encode("<|im_start|>user") == [151644, 872]


def test_bpe_matches_qwen_ids(tokenizer):
    assert tokenizer.encode("Hello world") == [9707, 1879]  # "Hello", " world" in Qwen2's vocabulary
    assert tokenizer.decode(tokenizer.encode(SAMPLES[1])) == SAMPLES[1]


def test_bpe_matches_tiktoken(tokenizer):
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe

    enc = tiktoken.Encoding("qwen2", pat_str=QWEN2_PATTERN,
                            mergeable_ranks=load_tiktoken_bpe(str(tiktoken_file())), special_tokens={})
    for text in SAMPLES:
        assert tokenizer.encode(text) == enc.encode(text), text


def test_configs(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    assert cfg["model_type"] == "qwen2_5_vl" and cfg["tie_word_embeddings"] is True
    assert cfg["vocab_size"] == cfg["text_config"]["vocab_size"] == 151936
    head_dim = cfg["hidden_size"] // cfg["num_attention_heads"]
    assert sum(cfg["rope_scaling"]["mrope_section"]) * 2 == head_dim
    gen = json.loads((model_dir / "generation_config.json").read_text())
    assert (gen["temperature"], gen["top_p"], gen["repetition_penalty"]) == (0.6, 0.95, 1.05)
    video = json.loads((model_dir / "video_preprocessor_config.json").read_text())
    assert video["video_processor_type"] == "Qwen2VLVideoProcessor"
    assert (video["min_pixels"], video["max_pixels"]) == (3136, 12845056)


def test_small_on_disk(model_dir):
    total = sum(f.stat().st_size for f in model_dir.iterdir() if f.is_file())
    assert total < 80 * 2**20, total


def test_rebuild_is_a_no_op(model_dir):
    weights = model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns
    t = time.monotonic()
    assert build_tiny_model(model_dir) == model_dir
    assert time.monotonic() - t < 1.0
    assert weights.stat().st_mtime_ns == before and (model_dir / MARKER).is_file()


def test_transformers_loads_model_and_processor(model_dir):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2_5_VLProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    assert isinstance(processor, Qwen2_5_VLProcessor)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.bfloat16)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    emb = model.get_input_embeddings().weight
    assert emb.shape == (151936, 128) and model.get_output_embeddings().weight.data_ptr() == emb.data_ptr()

    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert "<|vision_start|><|video_pad|><|vision_end|>What happens?<|im_end|>" in text
    # 4 frames of 56x84 (multiples of 28): not resized, 2 temporal x 4 x 6 patches, 12 tokens after 2x2 merging.
    frames = np.random.default_rng(0).integers(0, 256, (4, 56, 84, 3), dtype=np.uint8)
    metadata = {"fps": 2.0, "total_num_frames": 4, "frames_indices": [0, 1, 2, 3]}
    inputs = processor(text=[text], videos=[frames], video_metadata=[metadata], return_tensors="pt")
    assert inputs["video_grid_thw"].tolist() == [[2, 4, 6]]
    assert inputs["second_per_grid_ts"].tolist() == [1.0]  # temporal_patch_size / sampled fps
    assert int((inputs["input_ids"] == 151656).sum()) == 12

    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=2, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 2
