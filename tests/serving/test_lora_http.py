"""LoRA adapters over real HTTP with the fake engine: listing, routing by `model`, per-model
profiles, 404 for unknown names, and runtime load/unload with its setting and the API key."""
from __future__ import annotations

import httpx
import openai
import pytest

from app.config import Settings
from app.engine.fake import FakeEngine
from tests.conftest import MEDIA
from tests.engine.lora_adapters import LM_MODULES, VISION_MODULES, write_adapter

CLIP = "drv_transfer1_av_rgb_dusk_9s.mp4"


def engine_for(**kw) -> FakeEngine:
    # The engine reads the adapters from the same settings the server gets (as build_engine).
    return FakeEngine(Settings(model="tiny", engine="fake", **kw))


def ask(srv, model: str, video: bool = False, api_key: str = "unused"):
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key=api_key, max_retries=0)
    content = [{"type": "text", "text": "What happens? A) stop B) go"}]
    if video:
        content.append({"type": "video_url", "video_url": {"url": f"file://{MEDIA}/{CLIP}"}})
    return client.chat.completions.create(model=model, max_tokens=8,
                                          messages=[{"role": "user", "content": content}])


def test_adapters_are_models_chosen_by_name(live, tmp_path):
    a = write_adapter(tmp_path / "site-a", LM_MODULES)
    b = write_adapter(tmp_path / "site-b", LM_MODULES, rank=16)
    (b / "cosmos-serve.yaml").write_text("fps: 1\nsystem_prompt: You watch site B.\n")
    loras = (f"site-a={a}", f"site-b={b}")
    engine = engine_for(lora_modules=loras)
    with live(engine, lora_modules=loras) as srv:
        cards = {c["id"]: c for c in httpx.get(srv.url + "/v1/models").json()["data"]}
        one = httpx.get(srv.url + "/v1/models/site-b").json()

        out = ask(srv, "site-a", video=True)
        seen_a = engine.last_input
        ask(srv, "tiny", video=True)
        seen_base = engine.last_input
        ask(srv, "site-b", video=True)
        seen_b = engine.last_input

        with pytest.raises(openai.NotFoundError) as err:
            ask(srv, "site-c")
    assert set(cards) == {"tiny", "site-a", "site-b"}
    assert cards["tiny"]["parent"] is None
    assert (cards["site-a"]["parent"], cards["site-a"]["root"]) == ("tiny", str(a))
    assert one == cards["site-b"]
    assert out.model == "site-a"
    assert (seen_a.lora, seen_base.lora, seen_b.lora) == ("site-a", None, "site-b")

    # site-a has no profile of its own: the base's applies (4 fps, Cosmos-Reason1's prompt);
    # site-b's own cosmos-serve.yaml applies to it alone.
    assert cards["site-a"]["profile"] == cards["tiny"]["profile"]
    assert cards["site-b"]["profile"]["values"]["fps"] == 1
    assert cards["site-b"]["profile"]["sources"]["system_prompt"] == "profile"
    assert seen_a.videos[0].sample_fps == seen_base.videos[0].sample_fps
    # (frame counts are rounded to the temporal patch of 2, so rates come out a bit under)
    assert 3.5 < seen_a.videos[0].sample_fps <= 4
    assert 0.5 < seen_b.videos[0].sample_fps <= 1
    assert "You watch site B." in seen_b.prompt and "You watch site B." not in seen_a.prompt
    assert seen_a.prompt == seen_base.prompt

    body = err.value.body
    assert err.value.status_code == 404 and body["code"] == "model_not_found"
    assert "'site-c' does not exist" in body["message"] and "'site-b'" in body["message"]


def load(srv, name: str, path, headers=None, **extra) -> httpx.Response:
    return httpx.post(srv.url + "/v1/load_lora_adapter", headers=headers,
                      json={"lora_name": name, "lora_path": str(path), **extra})


def unload(srv, name: str, headers=None) -> httpx.Response:
    return httpx.post(srv.url + "/v1/unload_lora_adapter", json={"lora_name": name},
                      headers=headers)


def test_runtime_load_and_unload(live, tmp_path):
    good = write_adapter(tmp_path / "good", LM_MODULES)
    other = write_adapter(tmp_path / "other", LM_MODULES)
    broken = tmp_path / "broken"
    broken.mkdir()
    vision = write_adapter(tmp_path / "vision", LM_MODULES + VISION_MODULES)
    engine = engine_for(allow_runtime_lora_updating=True)
    with live(engine, allow_runtime_lora_updating=True) as srv:
        r = load(srv, "site-a", good)
        assert (r.status_code, r.text) == (200, "Success: LoRA adapter 'site-a' added "
                                                 "successfully.")
        ids = [c["id"] for c in httpx.get(srv.url + "/v1/models").json()["data"]]
        assert ids == ["tiny", "site-a"]
        assert ask(srv, "site-a").model == "site-a" and engine.last_input.lora == "site-a"

        again = load(srv, "site-a", other)
        assert again.status_code == 400 and "already been loaded" in again.text
        assert load(srv, "site-a", other, load_inplace=True).status_code == 200
        assert engine.adapters["site-a"].path == str(other)

        bad = load(srv, "site-b", broken)
        assert bad.status_code == 400
        assert bad.json()["error"]["code"] == "invalid_lora_adapter"
        assert "has no adapter_config.json" in bad.json()["error"]["message"]
        # The vision tower is off on this server: the adapter is refused, naming its tensors.
        vis = load(srv, "site-v", vision)
        assert vis.status_code == 400 and "model.visual.merger.mlp.0" in vis.text
        assert load(srv, "tiny", good).status_code == 400  # the base's own name
        assert load(srv, "", good).status_code == 400

        r = unload(srv, "site-a")
        assert (r.status_code, r.text) == (200, "Success: LoRA adapter 'site-a' removed "
                                                 "successfully.")
        with pytest.raises(openai.NotFoundError):
            ask(srv, "site-a")
        assert unload(srv, "site-a").status_code == 404
        ids = [c["id"] for c in httpx.get(srv.url + "/v1/models").json()["data"]]
        assert ids == ["tiny"]


def test_runtime_updates_need_the_setting(live, tmp_path):
    good = write_adapter(tmp_path / "good", LM_MODULES)
    with live(engine_for()) as srv:
        r = load(srv, "site-a", good)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == "runtime_lora_updating_disabled"
        assert "--allow-runtime-lora-updating" in r.json()["error"]["message"]
        assert unload(srv, "site-a").status_code == 403
        assert [c["id"] for c in httpx.get(srv.url + "/v1/models").json()["data"]] == ["tiny"]


def test_runtime_updates_need_the_api_key(live, tmp_path):
    good = write_adapter(tmp_path / "good", LM_MODULES)
    engine = engine_for(allow_runtime_lora_updating=True, api_key="k")
    with live(engine, allow_runtime_lora_updating=True, api_key="k") as srv:
        assert load(srv, "site-a", good).status_code == 401
        assert "site-a" not in engine.adapters
        key = {"Authorization": "Bearer k"}
        assert load(srv, "site-a", good, headers=key).status_code == 200
        assert unload(srv, "site-a").status_code == 401
        assert unload(srv, "site-a", headers=key).status_code == 200


def test_vision_adapter_at_start_turns_the_tower_on(live, tmp_path):
    vision = write_adapter(tmp_path / "vision", LM_MODULES + VISION_MODULES)
    loras = (f"site-v={vision}",)
    engine = engine_for(lora_modules=loras, allow_runtime_lora_updating=True)
    assert engine.lora_vision
    with live(engine, lora_modules=loras, allow_runtime_lora_updating=True) as srv:
        # ... so later adapters with vision weights are taken too.
        assert load(srv, "site-w", vision).status_code == 200
        ask(srv, "site-w", video=True)
    assert engine.last_input.lora == "site-w"
