"""Settings: environment names (ours and NIM's), list parsing, immutability, CLI flags."""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.cli import build_parser
from app.config import Settings


def test_cosmos_defaults_are_cosmos_reason1s():
    s = Settings()
    assert (s.video_fps, s.video_total_pixels) == (4.0, 6_422_528)
    assert (s.default_temperature, s.default_top_p, s.default_repetition_penalty,
            s.default_max_tokens) == (0.6, 0.95, 1.05, 4096)


def test_nim_variables_work_unchanged(monkeypatch):
    monkeypatch.setenv("NIM_MODEL_NAME", "/models/custom")
    monkeypatch.setenv("NIM_SERVED_MODEL_NAME", "my-reasoner")
    monkeypatch.setenv("NIM_HTTP_API_PORT", "9000")
    s = Settings()
    assert (s.model, s.model_name, s.port) == ("/models/custom", "my-reasoner", 9000)


def test_cosmos_variables_and_no_bare_names(monkeypatch):
    monkeypatch.setenv("MODEL", "/should/not/apply")
    monkeypatch.setenv("PORT", "1")
    monkeypatch.setenv("COSMOS_QUANTIZATION", "fp8")
    s = Settings()
    assert s.model == "nvidia/Cosmos-Reason1-7B" and s.port == 8000
    assert s.quantization == "fp8" and s.model_name == "Cosmos-Reason1-7B"


@pytest.mark.parametrize("value", ["/a:/b", '["/a", "/b"]', "/a,/b"])
def test_allowed_dirs_from_env(monkeypatch, value):
    monkeypatch.setenv("COSMOS_ALLOWED_LOCAL_MEDIA_DIRS", value)
    assert Settings().allowed_local_media_dirs == (Path("/a"), Path("/b"))


def test_frozen_and_validated():
    s = Settings()
    with pytest.raises(ValidationError):
        s.port = 1
    with pytest.raises(ValidationError):
        Settings(gpu_memory_utilization=1.5)


def test_every_setting_is_a_serve_flag():
    args = build_parser().parse_args(["serve", "--model", "m", "--video-fps", "2",
                                      "--no-enable-prefix-caching",
                                      "--allowed-local-media-dirs", "/x", "/y"])
    fields = {k: v for k, v in vars(args).items() if k in Settings.model_fields and v is not None}
    s = Settings(**fields)
    assert (s.model, s.video_fps, s.enable_prefix_caching) == ("m", 2.0, False)
    assert s.allowed_local_media_dirs == (Path("/x"), Path("/y"))
    dests = {a.dest for a in build_parser()._subparsers._group_actions[0].choices["serve"]._actions}
    assert set(Settings.model_fields) <= dests


def test_every_setting_is_documented_in_serve_help(capsys):
    undocumented = [n for n, f in Settings.model_fields.items() if not f.description]
    assert not undocumented
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, field in Settings.model_fields.items():
        assert "--" + name.replace("_", "-") in text
        assert " ".join(field.description.split())[:30] in text


def test_every_declared_metric_is_recorded_somewhere():
    import re

    from app import metrics

    app_dir = Path(metrics.__file__).parent
    source = "\n".join(p.read_text() for p in app_dir.rglob("*.py") if p.name != "metrics.py")
    declared = re.findall(r"^([A-Z_]+) = (?:Counter|Gauge|Histogram)\(",
                          Path(metrics.__file__).read_text(), re.M)
    assert declared
    unused = [m for m in declared if not re.search(rf"metrics\.{m}\b", source)]
    assert not unused
