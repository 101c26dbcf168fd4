"""What a quantize run wrote, read back from DST's files (both paths, same account)."""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from app.quantize.scheme import is_ignored

_FP8_DTYPES = {"F8_E4M3", "F8_E5M2"}


class Summary(BaseModel):
    src: str
    dst: str
    scheme: str
    method: str  # "no calibration" or "SmoothQuant 0.8 + GPTQ on N samples"
    device: str
    tensors: int  # weight tensors in DST, scales not counted
    tensors_quantized: int
    kept: dict[str, int]  # tensors left in their original dtype, by part of the model
    bytes_before: int  # SRC's weight files
    bytes_after: int  # DST's weight files
    seconds: float
    ignore: list[str]
    copied: list[str]

    def text(self) -> str:
        kept = ", ".join(f"{n} {part}" for part, n in self.kept.items() if n)
        ratio = self.bytes_after / self.bytes_before if self.bytes_before else 0.0
        return "\n".join([
            f"quantized {self.tensors_quantized} of {self.tensors} tensors to FP8 "
            f"({self.scheme}, {self.method}) on {self.device} in {self.seconds:.1f} s",
            f"weights: {_gb(self.bytes_before)} -> {_gb(self.bytes_after)} ({ratio:.2f}x)",
            f"kept as they were: {kept or 'none'}",
            f"copied: {', '.join(self.copied) or 'nothing'}",
            f"wrote {self.dst}; serve it with: cosmos-serve serve --model {self.dst}",
        ])


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _part(module: str) -> str:
    if module == "lm_head":
        return "lm_head"
    if is_ignored(module):
        return "vision tower"
    return "embeddings/norms/biases"


def read_back(dst: Path) -> tuple[int, int, dict[str, int], int]:
    """(weight tensors, FP8 tensors, kept tensors by part, bytes) of the safetensors in `dst`."""
    from safetensors import safe_open

    tensors = quantized = size = 0
    kept: dict[str, int] = {"lm_head": 0, "vision tower": 0, "embeddings/norms/biases": 0}
    for shard in sorted(dst.glob("*.safetensors")):
        size += shard.stat().st_size
        with safe_open(shard, framework="pt") as f:
            for name in f.keys():
                if name.endswith(("_scale", "_zero_point", "_g_idx")):
                    continue
                tensors += 1
                if f.get_slice(name).get_dtype() in _FP8_DTYPES:
                    quantized += 1
                else:
                    kept[_part(name.rsplit(".", 1)[0])] += 1
    return tensors, quantized, kept, size
