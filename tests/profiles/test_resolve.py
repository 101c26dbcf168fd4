"""Profiles: files, built-ins, training configs, and the documented order of precedence:
request > settings given explicitly > profile > generation_config.json > Cosmos-Reason1."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app.config import Settings
from app.errors import ConfigError, InvalidRequestError
from app.ingest.options import VideoRequestOptions, build
from app.profiles import deployment_profile, load_profile
from app.profiles.resolve import resolve
from app.profiles.training import dump, from_training

DATA = Path(__file__).resolve().parents[1] / "data" / "profiles"


def checkpoint(tmp_path: Path, profile: str | None = None, generation: dict | None = None) -> str:
    d = tmp_path / "ckpt"
    d.mkdir()
    if profile is not None:
        (d / "cosmos-serve.yaml").write_text(profile)
    if generation is not None:
        (d / "generation_config.json").write_text(json.dumps(generation))
    return str(d)


def test_each_layer_wins_over_the_ones_below(tmp_path):
    model = checkpoint(tmp_path, "temperature: 0.2\ntop_p: 0.5\nfps: 2\n",
                       {"temperature": 0.9, "top_p": 0.9, "top_k": 20, "max_new_tokens": 77})
    r = deployment_profile(Settings(model=model, default_top_p=0.7))
    assert r["temperature"] == 0.2 and r.sources["temperature"] == "profile"  # > generation
    assert r["top_p"] == 0.7 and r.sources["top_p"] == "settings"  # explicit > profile
    assert r["top_k"] == 20 and r["max_tokens"] == 77  # generation_config > defaults
    assert r["repetition_penalty"] == 1.05 and r.sources["repetition_penalty"] == "default"
    req = r.with_request({"temperature": 0.0, "fps": None})
    assert req["temperature"] == 0.0 and req.sources["temperature"] == "request"
    assert req["fps"] == 2


def test_generation_config_applies_without_a_profile(tmp_path):
    r = deployment_profile(Settings(model=checkpoint(tmp_path, None, {"temperature": 0.3})))
    assert r["temperature"] == 0.3 and r.profile_name == "cosmos-reason1"


def test_recipe_max_pixels_lowers_the_default_minimum():
    r = resolve(Settings(video_fps=1, video_max_pixels=81_920))
    assert (r["min_pixels"], r["max_pixels"]) == (81_920, 81_920)
    o = build(resolve(Settings()), VideoRequestOptions(video_fps=1, video_max_pixels=81_920))
    assert (o.fps, o.min_pixels, o.max_pixels) == (1, 81_920, 81_920)


def test_contradictions_in_one_layer_are_errors_naming_both():
    with pytest.raises(ConfigError, match="video_min_pixels .*video_max_pixels"):
        resolve(Settings(video_min_pixels=200_000, video_max_pixels=100_000))
    with pytest.raises(InvalidRequestError) as err:
        build(resolve(Settings()), VideoRequestOptions(video_min_pixels=300_000,
                                                       video_max_pixels=200_000))
    assert err.value.param == "video_min_pixels"


def test_a_frame_count_replaces_a_lower_layers_rate():
    r = resolve(Settings(video_fps=2)).with_request({"nframes": 8})
    assert (r["fps"], r["nframes"]) == (None, 8)
    r = resolve(Settings(video_nframes=8)).with_request({"fps": 1.0})
    assert (r["fps"], r["nframes"]) == (1.0, None)
    with pytest.raises(ConfigError, match="not both"):
        resolve(Settings(video_fps=2, video_nframes=8))


@pytest.mark.parametrize("text, key", [("fps: 1\nspeed: 2\n", "speed"),
                                       ("fps: fast\n", "fps"), ("- 1\n", "mapping")])
def test_bad_profile_files_name_the_file_and_key(tmp_path, text, key):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_profile(str(path))
    assert str(path) in str(err.value) and key in str(err.value)


def test_unknown_profile_name():
    with pytest.raises(ConfigError, match="unknown profile 'cookbook'.*cookbook-sft"):
        load_profile("cookbook")


def test_from_training_round_trips_the_cookbook_config(tmp_path):
    made = from_training(DATA / "cookbook_sft_config.toml", DATA / "cookbook_eval_config.yaml")
    _, builtin = load_profile("cookbook-sft")
    assert made.given() == {k: v for k, v in builtin.given().items()
                            if k not in ("top_p", "top_k")}  # the recipe's eval names neither
    path = tmp_path / "cosmos-serve.yaml"
    path.write_text(dump(made))
    assert load_profile(str(path))[1] == made


def test_training_config_without_vision_section(tmp_path):
    bad = tmp_path / "sft.toml"
    bad.write_text("[custom.dataset]\nsystem_prompt = 'x'\n")
    with pytest.raises(ConfigError, match=r"sft.toml: no \[custom.vision\]"):
        from_training(bad)


def test_checkpoint_profile_is_the_default_and_flag_overrides_it(tmp_path):
    model = checkpoint(tmp_path, "fps: 1\n")
    assert deployment_profile(Settings(model=model))["fps"] == 1
    r = deployment_profile(Settings(model=model, profile="cosmos-reason1"))
    assert r["fps"] == 4 and r.profile_name == "cosmos-reason1"
    shutil.rmtree(model)


@pytest.mark.parametrize("profile, frames, size, tokens", [
    ("cookbook-sft", 74, (196, 364), 3367), ("cosmos-reason1", 300, (224, 420), 18000)])
def test_a_75s_1080p_clip_as_each_profile_sees_it(profile, frames, size, tokens):
    import numpy as np

    from app.ingest.sampling import make_plan

    name, p = load_profile(profile)
    plan = make_plan(np.arange(2250) / 30.0, 30.0, 1080, 1920, build(resolve(Settings(), p, name)))
    assert (plan.nframes, (plan.height, plan.width)) == (frames, size)
    assert plan.nframes // 2 * (plan.height // 28) * (plan.width // 28) == tokens
