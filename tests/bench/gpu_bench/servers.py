"""The two servers as subprocesses: same folder, flags and sampling; started, probed, stopped."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import NAME

REPO = Path(__file__).resolve().parents[3]


def nvidia_smi(query: str) -> str:
    try:
        return subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception as exc:  # noqa: BLE001
        return f"n/a ({exc})"


def wait_gpu_free(limit_mib: int = 2000, timeout: float = 90) -> float:
    t = time.time()
    while time.time() - t < timeout:
        used = nvidia_smi("memory.used").splitlines()
        try:
            if max(int(u) for u in used) < limit_mib:
                return time.time() - t
        except ValueError:
            return -1
        time.sleep(1)
    return -1


class Server:
    def __init__(self, kind: str, cmd: list[str], env: dict, port: int, logfile: Path):
        self.kind, self.cmd, self.env, self.port, self.logfile = kind, cmd, env, port, logfile
        self.base = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.t0 = time.time()
        self.log = open(self.logfile, "w")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
                                     cwd=REPO, start_new_session=True)

    def ready_after(self) -> float | None:
        """Seconds from start to ready, or None while loading; raises if the process died."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.tail(60)}")
        try:
            if urllib.request.urlopen(self.base + "/health", timeout=2).status == 200:
                return time.time() - self.t0
        except Exception:  # noqa: BLE001
            pass
        return None

    def tail(self, n: int) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def excerpt(self, head: int, tail: int) -> str:
        """The log's start (how the start-up time was spent) and its end."""
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        if len(lines) <= head + tail:
            return "\n".join(lines)
        return "\n".join(lines[:head] + [f"... {len(lines) - head - tail} lines ..."] + lines[-tail:])

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)  # its own session: the server and its engine processes
        for sig, wait in ((signal.SIGINT, 15), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(pgid, signal.SIGKILL)  # engine-core children that outlived the parent
        except ProcessLookupError:
            pass


def wait_all_ready(servers: list[Server], timeout: float) -> dict[str, float | str]:
    """Poll every server until each is ready or failed; {kind: seconds to ready | error}."""
    out: dict[str, float | str] = {}
    t = time.time()
    while len(out) < len(servers) and time.time() - t < timeout:
        for s in servers:
            if s.kind in out:
                continue
            try:
                took = s.ready_after()
            except RuntimeError as exc:
                out[s.kind] = f"failed: {exc}"[-3000:]
                continue
            if took is not None:
                out[s.kind] = round(took, 1)
        time.sleep(1)
    for s in servers:
        out.setdefault(s.kind, f"not ready after {timeout:.0f} s:\n{s.tail(40)}")
    return out


def stop_all(servers: list[Server]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(servers) or 1) as pool:
        list(pool.map(Server.stop, servers))


@dataclass(frozen=True)
class ServerConfig:
    kind: str  # "ours" or "vllm"
    quant: str  # "none", "fp8" (on the fly) or "fp8ckpt" (an FP8 checkpoint)
    tp: int
    port: int
    label: str = ""
    lora_rank: int = 0  # serves the random adapter of gpu_bench/lora_r16.py next to the base

    @property
    def key(self) -> str:
        """Run key in results.json: quant/kind, then /tpN beyond one GPU, /lora_rR, the label."""
        return "/".join(x for x in (self.quant, self.kind, f"tp{self.tp}" if self.tp > 1 else "",
                                    f"lora_r{self.lora_rank}" if self.lora_rank else "",
                                    self.label) if x)


def server_cmd(c: ServerConfig, a: argparse.Namespace) -> list[str]:
    """The same model, context, memory and caching flags for both servers."""
    if c.kind == "engine":  # the engine bound: the same engine arguments, in-process (engine.py)
        from .engine import engine_cmd

        return engine_cmd(c, a)
    py = a.python
    # fp8ckpt: the checkpoint `cosmos-serve quantize` wrote, loaded as written (its config says
    # FP8: no quantization flag); everything else: the weightless folder with dummy weights.
    model, load = (a.fp8_checkpoint, "auto") if c.quant == "fp8ckpt" else (a.model, "dummy")
    common = ["--model", model, "--served-model-name", NAME, "--load-format", load,
              "--max-model-len", str(a.max_model_len), "--gpu-memory-utilization", str(a.gpu_mem),
              "--port", str(c.port), "--host", "127.0.0.1", "--no-enable-prefix-caching"]
    if a.kv_cache_bytes:
        common += ["--kv-cache-memory-bytes", str(a.kv_cache_bytes)]
    if c.tp > 1:
        common += ["--tensor-parallel-size", str(c.tp)]
    if c.quant not in ("none", "fp8ckpt"):
        common += ["--quantization", c.quant]
    if c.lora_rank:
        from .lora_r16 import NAME as LORA

        common += ["--max-lora-rank", str(c.lora_rank)]
        common += ["--lora", f"{LORA}={a.lora_dir}"] if c.kind == "ours" else \
            ["--enable-lora", "--max-loras", "1", "--lora-modules", f"{LORA}={a.lora_dir}"]
    if c.kind == "ours":
        launcher = ["-m", "app"]
        if a.ours_usage_context:  # A/B of the engine's usage context (vLLM's batch-size defaults)
            launcher = ["-c", _USAGE_CONTEXT_LAUNCHER.replace("CTX", a.ours_usage_context)]
        return [py, *launcher, "serve", *common, "--video-cache-bytes", "0", *shlex.split(a.ours_args)]
    trust = ["--trust-request-mm-kwargs"] if _vllm_gates_request_mm_kwargs() else []
    return [py, "-m", "vllm.entrypoints.openai.api_server", *common, "--seed", "0",
            "--media-io-kwargs", json.dumps({"video": {"fps": 4, "num_frames": -1}}),
            "--limit-mm-per-prompt", json.dumps({"video": 1, "image": 8}), *trust,
            *shlex.split(a.vllm_args)]


_USAGE_CONTEXT_LAUNCHER = """
import vllm.v1.engine.async_llm as m
from vllm.usage.usage_lib import UsageContext
_orig = m.AsyncLLM.from_engine_args.__func__
def _fea(cls, engine_args, *a, **k):
    k["usage_context"] = UsageContext["CTX"]
    return _orig(cls, engine_args, *a, **k)
m.AsyncLLM.from_engine_args = classmethod(_fea)
from app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _vllm_gates_request_mm_kwargs() -> bool:
    """vLLM after 0.26 refuses per-request mm_processor_kwargs unless started with
    --trust-request-mm-kwargs (a flag 0.26 does not know)."""
    import importlib.util

    spec = importlib.util.find_spec("vllm")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        f = Path(loc) / "entrypoints" / "launchers" / "cli_args.py"
        if f.is_file() and "trust_request_mm_kwargs" in f.read_text(errors="replace"):
            return True
    return False


def server_env(kind: str, a: argparse.Namespace) -> dict:
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(":") if p]
    if str(REPO) not in paths:
        paths.append(str(REPO))
    env["PYTHONPATH"] = ":".join(paths)
    env.setdefault("VLLM_USE_FLASHINFER_SAMPLER", "0")
    env.setdefault("PYTHONUNBUFFERED", "1")
    for item in (a.ours_env if kind == "ours" else a.vllm_env):
        k, _, v = item.partition("=")
        env[k] = v
    return env


