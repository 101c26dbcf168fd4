"""Adapter folders checked before an engine sees them: what is refused, and how it is said."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.config import Settings
from app.engine.fake import FakeEngine
from app.engine.lora import parse_lora_module, read_adapter, start_adapters
from app.errors import ConfigError, LoraAdapterError
from tests.conftest import REPO
from tests.engine.lora_adapters import LM_MODULES, VISION_MODULES, write_adapter


def settings(**kw) -> Settings:
    return Settings(model="/models/base", engine="fake", **kw)


def test_parse_name_equals_path():
    assert parse_lora_module("site-a=/m/lora a") == ("site-a", "/m/lora a")
    for bad in ("site-a", "=/m", "site-a=", "-x=/m"):
        with pytest.raises(ValueError):
            parse_lora_module(bad)


def test_settings_take_repeated_flags_and_the_environment(monkeypatch):
    from app.cli import build_parser

    args = build_parser().parse_args(["serve", "--lora", "a=/x", "--lora", "b=/y"])
    assert args.lora == ["a=/x", "b=/y"]
    monkeypatch.setenv("COSMOS_LORA_MODULES", "a=/x,b=/y")
    assert Settings().lora_modules == ("a=/x", "b=/y")
    monkeypatch.setenv("COSMOS_LORA_MODULES", '["a=/x", "b=/y,z"]')
    assert Settings().lora_modules == ("a=/x", "b=/y,z")
    with pytest.raises(ValueError, match="given twice: a"):
        Settings(lora_modules=["a=/x", "a=/y"])
    with pytest.raises(ValueError, match="max_lora_rank must be one of"):
        Settings(max_lora_rank=12)


def test_a_good_adapter_reads(tmp_path):
    path = write_adapter(tmp_path / "a", LM_MODULES, rank=16)
    adapter = read_adapter("a", str(path), settings(), vision_ok=False)
    assert (adapter.rank, adapter.vision_modules, adapter.profile) == (16, (), None)
    assert adapter.path == str(path.resolve())


@pytest.mark.parametrize("breakage, message", [
    ("missing", "is not a directory"),
    ("no-config", "has no adapter_config.json"),
    ("bad-json", "is not readable JSON"),
    ("no-weights", "has no adapter weights"),
    ("bad-weights", "cannot read"),
    ("rank", "rank 64, above max_lora_rank 16; start the server with --max-lora-rank 64"),
    ("rank-pattern", "rank 32, above max_lora_rank 16"),
    ("dora", "DoRA cannot be served"),
    ("not-lora", "peft_type 'IA3' is not LORA"),
    ("profile", "profile file"),
])
def test_a_broken_adapter_is_a_clear_error(tmp_path, breakage, message):
    path = write_adapter(tmp_path / "a", LM_MODULES)
    cfg = json.loads((path / "adapter_config.json").read_text())
    if breakage == "missing":
        path = tmp_path / "nowhere"
    elif breakage == "no-config":
        (path / "adapter_config.json").unlink()
    elif breakage == "bad-json":
        (path / "adapter_config.json").write_text("{r: 8")
    elif breakage == "no-weights":
        (path / "adapter_model.safetensors").unlink()
    elif breakage == "bad-weights":
        (path / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
    elif breakage == "profile":
        (path / "cosmos-serve.yaml").write_text("fps: 1\nwarp_speed: 9\n")
    else:
        cfg.update({"rank": {"r": 64}, "rank-pattern": {"rank_pattern": {"q_proj": 32}},
                    "dora": {"use_dora": True}, "not-lora": {"peft_type": "IA3"}}[breakage])
        (path / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(LoraAdapterError, match=message):
        read_adapter("a", str(path), settings(), vision_ok=False)
    # At start the same check names the --lora it came from.
    with pytest.raises(ConfigError, match=f"--lora a={path}: .*{message}"):
        FakeEngine(settings(lora_modules=[f"a={path}"]))


def test_vision_tower_weights_are_named_never_dropped(tmp_path):
    path = write_adapter(tmp_path / "v", LM_MODULES + VISION_MODULES)
    with pytest.raises(LoraAdapterError) as err:
        read_adapter("v", str(path), settings(), vision_ok=False)
    for module in VISION_MODULES:
        assert module in err.value.message
    assert "--lora-vision-tower on" in err.value.message
    assert "language_model" not in err.value.message  # only the offending tensors are named
    with pytest.raises(ConfigError, match="model.visual.merger.mlp.0"):
        start_adapters(settings(lora_modules=[f"v={path}"], lora_vision_tower="off"))
    # auto: the engine is asked to apply them (and says so); on: also for later adapters.
    adapters, vision = start_adapters(settings(lora_modules=[f"v={path}"]))
    assert vision and adapters["v"].vision_modules == tuple(VISION_MODULES)
    assert start_adapters(settings(lora_vision_tower="on"))[1]
    assert not start_adapters(settings())[1]


def test_adapter_named_as_the_base_is_refused(tmp_path):
    path = write_adapter(tmp_path / "a", LM_MODULES)
    with pytest.raises(ConfigError, match="the name is the base model's"):
        start_adapters(settings(lora_modules=[f"base={path}"]))


def test_serve_refuses_a_broken_adapter_at_start(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "app", "serve", "--engine", "fake", "--model", str(tmp_path),
         "--lora", f"site-a={tmp_path / 'missing'}"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"--lora site-a={tmp_path / 'missing'}: LoRA adapter 'site-a'" in proc.stderr
    assert "is not a directory" in proc.stderr


def test_gpu_bench_adapter_is_what_peft_writes(tiny_model, tmp_path):
    """tests/bench/gpu_bench/lora_r16.py makes the rank-16 adapter for the 7B where PEFT is not
    at hand: on the tiny checkpoint its tensors are exactly PEFT's (names, shapes) for the same
    config, and our checks take it."""
    import importlib.util

    import torch
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open
    from transformers import Qwen2_5_VLForConditionalGeneration

    spec = importlib.util.spec_from_file_location(
        "lora_r16", REPO / "tests" / "bench" / "gpu_bench" / "lora_r16.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = bench.make_adapter(tiny_model, tmp_path / "r16", rank=16)
    cfg = json.loads((out / "adapter_config.json").read_text())

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tiny_model, dtype=torch.bfloat16)
    peft_model = get_peft_model(model, LoraConfig(r=cfg["r"], lora_alpha=cfg["lora_alpha"],
                                                  target_modules=cfg["target_modules"]))
    want = {f"base_model.model.{k.removeprefix('base_model.model.')}": tuple(v.shape)
            for k, v in get_peft_model_state_dict(peft_model).items()}
    with safe_open(str(out / "adapter_model.safetensors"), framework="pt") as f:
        got = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    assert got == want
    adapter = read_adapter("r16", str(out), settings(), vision_ok=False)
    assert (adapter.rank, adapter.vision_modules) == (16, ())
