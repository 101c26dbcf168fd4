"""`cosmos-serve quantize SRC DST`: write an FP8 (compressed-tensors) copy of a Qwen2.5-VL checkpoint.

Without --calibration: FP8_DYNAMIC with no data (torch + safetensors, shard by shard, on the GPU
when there is one). With --calibration: NVIDIA's recipe (SmoothQuant 0.8 + GPTQ, FP8_DYNAMIC)
through llm-compressor, calibrated on the team's clips run through our ingestion.
DST gets everything needed to serve with no flag: `cosmos-serve serve --model DST`.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from app.quantize.checkpoint import (QuantizeError, check_destination, check_source,
                                     copy_side_files, publish, write_config)
from app.quantize.scheme import DEFAULT_SCHEME, IGNORE, SCHEMES, quantization_config
from app.quantize.summary import Summary, read_back

DEFAULT_SAMPLES = 512  # NVIDIA's recipe


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cosmos-serve quantize", description=__doc__.split("\n")[0])
    p.add_argument("src", metavar="SRC", help="bf16 Qwen2.5-VL checkpoint folder")
    p.add_argument("dst", metavar="DST", help="new (or empty) folder to write")
    p.add_argument("--scheme", default=DEFAULT_SCHEME,
                   help=f"quantization scheme (known: {', '.join(SCHEMES)}; default {DEFAULT_SCHEME}):"
                        " FP8 weights per output channel, FP8 activations scaled per token at run time")
    p.add_argument("--calibration", metavar="DATASET",
                   help="LLaVA-style JSON (video/image + conversations) or a folder of videos: run "
                        "NVIDIA's SmoothQuant + GPTQ recipe on them (needs cosmos-serve[quantize])")
    p.add_argument("--num-samples", type=int, metavar="N",
                   help=f"calibration samples to use (default {DEFAULT_SAMPLES}; --calibration only)")
    p.add_argument("--media-dir", metavar="DIR",
                   help="folder the JSON's media paths are relative to (default: the JSON's folder)")
    p.add_argument("--max-seq-len", type=int, default=8192,
                   help="calibration text past this many tokens is cut; a sample whose media "
                        "alone are longer is refused (default 8192)")
    p.add_argument("--device", default="auto",
                   help="fp8-dynamic: auto (cuda when available, else cpu), cpu, cuda")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _check_args(args: argparse.Namespace) -> None:
    if args.scheme not in SCHEMES:
        raise QuantizeError(f"unknown scheme {args.scheme!r}; known: {', '.join(SCHEMES)}")
    if args.calibration is None:
        if args.num_samples is not None or args.media_dir is not None:
            raise QuantizeError("--num-samples and --media-dir go with --calibration")
        return
    if args.num_samples is not None and args.num_samples < 1:
        raise QuantizeError(f"--num-samples must be at least 1, got {args.num_samples}")
    from app.quantize.calibration import require_llmcompressor

    require_llmcompressor()  # before anything is read, let alone written


def run(args: argparse.Namespace) -> Summary:
    _check_args(args)
    src = check_source(args.src)
    dst = check_destination(args.dst, src)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # Written beside DST and moved in at the end: an interrupted run leaves DST as it was.
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    started = time.perf_counter()
    try:
        if args.calibration is None:
            device, method = _fp8_dynamic(src, tmp, args)
        else:
            from app.quantize.calibration import calibrate

            device, method = calibrate(
                src, tmp, dataset=Path(args.calibration),
                num_samples=args.num_samples or DEFAULT_SAMPLES,
                media_dir=Path(args.media_dir) if args.media_dir else None,
                max_seq_len=args.max_seq_len, progress=not args.no_progress)
        copied = copy_side_files(src.path, tmp)
        publish(tmp, dst)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - started
    tensors, quantized, kept, size = read_back(dst)
    return Summary(src=str(src.path), dst=str(dst), scheme=args.scheme, method=method,
                   device=device, tensors=tensors, tensors_quantized=quantized, kept=kept,
                   bytes_before=src.bytes, bytes_after=size, seconds=round(seconds, 3),
                   ignore=list(IGNORE), copied=copied)


def _fp8_dynamic(src, out: Path, args: argparse.Namespace) -> tuple[str, str]:
    from tqdm import tqdm

    from app.quantize.fp8 import pick_device, write_fp8_dynamic

    device = pick_device(args.device)
    with tqdm(total=src.bytes, unit="B", unit_scale=True, desc="quantize", file=sys.stderr,
              disable=args.no_progress) as bar:
        write_fp8_dynamic(src, out, device, advance=bar.update)
    write_config(src, out, quantization_config(args.scheme))
    return device.type, "no calibration"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        summary = run(args)
    except QuantizeError as exc:
        print(f"cosmos-serve quantize: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cosmos-serve quantize: interrupted; DST was left as it was", file=sys.stderr)
        return 130
    print(summary.model_dump_json(indent=2) if args.json else summary.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
