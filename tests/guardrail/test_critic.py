"""The model critic (app/guardrail/critic.py): over real HTTP on the fake engine (a critic that
answers Yes, No, noise, fails or is slow) with a real clip, and once on the real vLLM CPU engine.

The rule file here is a small one of its own (format rules, and one speed bound the answers here
never break), so the rules' verdict is known whatever the shipped rules say; the critic's
finding is the one under test.
"""
from __future__ import annotations

import json
import logging
import time

import httpx
import openai
import pytest
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.engine.fake import DEFAULT_SCRIPT, FakeEngine
from app.guardrail.critic import CRITIC_SYSTEM_PROMPT, RULE_ID, parse_verdict
from tests.conftest import MEDIA

CLIP = MEDIA / "drv_predict1_dashcam_batch4.mp4"
QUESTION = "Is it safe to turn left? A) yes B) no"
YES = ("<think>\n<overview>\nA dashcam view of a street.\n</overview>\n\n"
       "<component name=\"Braking\">\n<analysis>\nNo car stops from 100 km/h within 1 m.\n"
       "</analysis>\n<anomaly>Yes</anomaly>\n</component>\n\n"
       "<component name=\"Road\">\n<analysis>\nThe road is dry.\n</analysis>\n"
       "<anomaly>No</anomaly>\n</component>\n</think>\n\n<answer>\nYes\n</answer>")
NO = ("<think>\n<overview>\nA dashcam view of a street.\n</overview>\n</think>\n\n"
      "<answer>\nNo\n</answer>")
RULES = """\
units: {km/h: km/h}
objects: {car: [car]}
rules:
  - {id: speed.car, type: quantity, dimension: speed, objects: [car], max: 400 km/h,
     severity: warning, message: "{value} is too fast for a car"}
  - {id: format.no_answer, type: format, condition: no_answer, severity: warning,
     message: "the output has no answer"}
  - {id: format.truncated, type: format, condition: truncated, severity: critical,
     message: "the output was cut off"}
"""


class CriticEngine(FakeEngine):
    """The fake engine; a prompt with the critic's system prompt gets `critic_script`, or an
    engine error (`critic_fails`)."""

    def __init__(self, critic_script: str = YES, critic_step_delay_s: float = 0.0,
                 critic_fails: bool = False, **kw):
        super().__init__(**kw)
        self.critic = FakeEngine(script=critic_script, step_delay_s=critic_step_delay_s)
        self.critic_fails = critic_fails
        self.critic_inputs = []

    async def generate(self, inp):
        if CRITIC_SYSTEM_PROMPT not in inp.prompt:
            async for step in super().generate(inp):
                yield step
            return
        self.critic_inputs.append(inp)
        if self.critic_fails:
            raise RuntimeError("EngineCore died")
        async for step in self.critic.generate(inp):
            yield step


@pytest.fixture
def rules(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return path


def ask(srv, critic: bool | None = True, model: str = "tiny", **kw):
    extra = {} if critic is None else {"guardrail_critic": critic}
    return OpenAI(base_url=srv.url + "/v1", api_key="x", max_retries=0).chat.completions.create(
        model=model, messages=[{"role": "user", "content": [
            {"type": "video_url", "video_url": {"url": CLIP.as_uri()}},
            {"type": "text", "text": QUESTION}]}],
        extra_body={**extra, **kw.pop("extra_body", {})}, **kw)


def body(critic: bool = True, **kw) -> dict:
    return {"model": "tiny", "guardrail_critic": critic, "messages": [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": CLIP.as_uri()}},
        {"type": "text", "text": QUESTION}]}], **kw}


def sample(srv, name: str, **labels) -> float:
    for family in text_string_to_metric_families(httpx.get(srv.url + "/metrics").text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def verdicts(srv, verdict: str) -> float:
    return sample(srv, "cosmos_guardrail_critic_verdicts_total", verdict=verdict)


# ------------------------------------------------------------------------------ the verdict

def test_parse_verdict_reads_the_templates_answer_and_quotes_the_flagged_component():
    assert parse_verdict(YES) == ("implausible", "Braking: No car stops from 100 km/h within 1 m.")
    assert parse_verdict(NO) == ("plausible", "A dashcam view of a street.")
    assert parse_verdict("<think>\nhm\n</think>\n\n<answer>\n**Yes.** It is odd\n</answer>")[0] \
        == "implausible"
    for noise in ("", "<think>\n<overview>\nA street", "<answer>\nMaybe\n</answer>",
                  "<answer>\nYesterday it rained\n</answer>", "ngh 23 ### ;;"):
        assert parse_verdict(noise) == ("unknown", "")


def test_off_by_default(live, rules):
    assert Settings(model="m").guardrail_critic is False
    engine = CriticEngine()
    with live(engine, guardrail_rules_path=rules) as srv:
        r = ask(srv, critic=None)
    assert r.choices[0].message.content == "B"
    assert r.choices[0].model_extra["guardrail"] == {"verdict": "pass", "findings": []}
    assert engine.critic_inputs == []


# ------------------------------------------------------------------ what the critic is asked

def test_implausible_verdict_is_a_finding_and_the_critic_sees_the_requests_own_frames(live,
                                                                                    rules):
    engine = CriticEngine(critic_script=YES)
    with live(engine, guardrail_rules_path=rules) as srv:
        decodes = sample(srv, "cosmos_ingest_decode_seconds_count")
        asked = sample(srv, "cosmos_guardrail_critic_seconds_count")
        flagged = verdicts(srv, "implausible")
        r = ask(srv)
        assert sample(srv, "cosmos_ingest_decode_seconds_count") == decodes + 1  # decoded once
        assert sample(srv, "cosmos_guardrail_critic_seconds_count") == asked + 1
        assert verdicts(srv, "implausible") == flagged + 1
        assert sample(srv, "cosmos_guardrail_findings_total", rule=RULE_ID,
                      severity="warning") >= 1
    choice = r.choices[0]
    assert choice.message.content == "B" and choice.finish_reason == "stop"
    report = choice.model_extra["guardrail"]
    assert report["verdict"] == "flag"
    [finding] = report["findings"]
    assert finding["rule_id"] == "critic.implausible" and finding["severity"] == "warning"
    assert "No car stops from 100 km/h within 1 m." in finding["message"]
    assert finding["source"] == "answer"
    assert DEFAULT_SCRIPT[slice(*finding["span"])] == "B"  # the answer, in the raw text

    main, [critic] = engine.last_input, engine.critic_inputs
    assert critic.videos[0] is main.videos[0]  # the same decoded frames, not a new decode
    assert critic.request_id == f"{r.id}-critic-0"
    assert critic.lora == main.lora
    assert critic.sampling.temperature == 0.0 and critic.sampling.max_tokens <= 1024
    assert QUESTION in critic.prompt and "Answer: B" in critic.prompt


def test_an_adapters_answer_is_judged_by_the_same_adapter(live, rules, tmp_path):
    from tests.engine.lora_adapters import LM_MODULES, write_adapter

    loras = (f"site-a={write_adapter(tmp_path / 'site-a', LM_MODULES)}",)
    engine = CriticEngine(settings=Settings(model="tiny", engine="fake", lora_modules=loras))
    with live(engine, guardrail_rules_path=rules, lora_modules=loras) as srv:
        ask(srv, model="site-a")
    assert engine.last_input.lora == "site-a"
    assert [i.lora for i in engine.critic_inputs] == ["site-a"]


def test_plausible_and_unparseable_verdicts_leave_the_report_alone(live, rules):
    for script, verdict in ((NO, "plausible"), ("ngh ### 12 <answer>\nperhaps", "unknown")):
        engine = CriticEngine(critic_script=script)
        with live(engine, guardrail_rules_path=rules) as srv:
            before = verdicts(srv, verdict)
            r = ask(srv)
            assert verdicts(srv, verdict) == before + 1
        assert r.choices[0].model_extra["guardrail"] == {"verdict": "pass", "findings": []}
        assert len(engine.critic_inputs) == 1


def test_block_policy_withholds_the_answer_whole_and_streamed(live, rules):
    engine = CriticEngine(critic_script=YES)
    with live(engine, guardrail_rules_path=rules, guardrail_policy_warning="block") as srv:
        whole = ask(srv)
        chunks = list(ask(srv, stream=True))
    assert whole.choices[0].message.content is None
    assert whole.choices[0].finish_reason == "content_filter"
    assert whole.choices[0].model_extra["guardrail"]["verdict"] == "block"
    assert not "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1].choices[0]
    assert last.finish_reason == "content_filter"
    assert last.model_extra["guardrail"]["findings"][0]["rule_id"] == RULE_ID


def test_each_choice_is_judged(live, rules):
    engine = CriticEngine(critic_script=YES)
    with live(engine, guardrail_rules_path=rules) as srv:
        r = ask(srv, n=2)
    assert sorted(i.request_id[-1] for i in engine.critic_inputs) == ["0", "1"]
    assert [c.model_extra["guardrail"]["verdict"] for c in r.choices] == ["flag", "flag"]


def test_rules_that_already_block_spare_the_critic(live, rules):
    engine = CriticEngine(critic_script=YES)
    with live(engine, guardrail_rules_path=rules, guardrail_policy_critical="block") as srv:
        skipped = verdicts(srv, "skipped")
        # cut off just before </answer>: the answer "B" is there, format.truncated blocks it
        r = ask(srv, max_tokens=engine.count_tokens(DEFAULT_SCRIPT) - 1)
        assert verdicts(srv, "skipped") == skipped + 1
    assert r.choices[0].model_extra["guardrail"]["verdict"] == "block"
    assert [f["rule_id"] for f in r.choices[0].model_extra["guardrail"]["findings"]] == [
        "format.truncated"]
    assert engine.critic_inputs == []


# ------------------------------------------------------------------- who may turn it on/off

def test_server_on_request_off_and_a_server_that_does_not_let_requests_choose(live, rules):
    engine = CriticEngine()
    with live(engine, guardrail_rules_path=rules, guardrail_critic=True) as srv:
        ask(srv, critic=False)
        assert engine.critic_inputs == []
        ask(srv, critic=None)
        assert len(engine.critic_inputs) == 1
    with live(CriticEngine(), guardrail_rules_path=rules,
              guardrail_critic_per_request=False) as srv:
        with pytest.raises(openai.BadRequestError) as e:
            ask(srv, critic=True)
        assert e.value.body["param"] == "guardrail_critic"
        assert "guardrail_critic_per_request" in e.value.body["message"]
        ask(srv, critic=False)  # what the server does anyway is fine


def test_a_critic_that_cannot_run_is_refused_not_ignored(live, rules):
    with live(CriticEngine(), guardrail_rules_path=rules,
              guardrail_policy_warning="off") as srv:
        with pytest.raises(openai.BadRequestError) as e:
            ask(srv)
        assert "policy for warning findings" in e.value.body["message"]
        with pytest.raises(openai.BadRequestError):
            ask(srv, extra_body={"guardrail": False})


# --------------------------------------------------------- failures never fail the answer

def test_engine_error_in_the_critic_gives_the_answer_a_log_line_and_a_metric(live, rules,
                                                                           caplog):
    engine = CriticEngine(critic_fails=True)
    with caplog.at_level(logging.WARNING, logger="app.guardrail.critic"):
        with live(engine, guardrail_rules_path=rules) as srv:
            errors = verdicts(srv, "error")
            r = ask(srv)
            assert verdicts(srv, "error") == errors + 1
            assert srv.metric("cosmos_engine_requests_running") == 0
    assert r.choices[0].message.content == "B"
    assert r.choices[0].model_extra["guardrail"] == {"verdict": "pass", "findings": []}
    assert any("model critic" in m and "EngineCore died" in m for m in caplog.messages)
    assert f"{r.id}-critic-0" in engine.aborted


def test_the_critic_counts_against_the_deadline_and_is_aborted_when_it_passes(live, rules):
    engine = CriticEngine(critic_step_delay_s=1.0)  # ~60 s of critic
    with live(engine, guardrail_rules_path=rules) as srv:
        timeouts = verdicts(srv, "timeout")
        r = httpx.post(srv.url + "/v1/chat/completions", json=body(),
                       headers={"X-Request-Deadline-S": "4"}, timeout=60)
        assert r.status_code == 200  # the answer was complete: it is returned
        assert verdicts(srv, "timeout") == timeouts + 1
    choice = r.json()["choices"][0]
    assert choice["message"]["content"] == "B"
    assert choice["guardrail"] == {"verdict": "pass", "findings": []}
    assert f"{r.json()['id']}-critic-0" in engine.aborted


def test_client_gone_during_the_critic_aborts_its_engine_request(live, rules):
    engine = CriticEngine(critic_step_delay_s=0.5)
    with live(engine, guardrail_rules_path=rules) as srv:
        with httpx.stream("POST", srv.url + "/v1/chat/completions", json=body(stream=True),
                          timeout=30) as r:
            for line in r.iter_lines():
                if line.startswith("data: ") and '"content":"B"' in line:
                    request_id = json.loads(line[6:])["id"]
                    break  # the answer is out; its verdict waits for the critic
            until = time.monotonic() + 10
            while not engine.critic_inputs and time.monotonic() < until:
                time.sleep(0.05)
            assert engine.critic_inputs  # the critic is running when the client leaves
        until = time.monotonic() + 10
        while f"{request_id}-critic-0" not in engine.aborted and time.monotonic() < until:
            time.sleep(0.05)
        assert f"{request_id}-critic-0" in engine.aborted
        assert srv.metric("cosmos_requests_in_flight") == 0
        assert srv.metric("cosmos_engine_requests_running") == 0


def test_no_room_in_the_context_skips_the_critic(live, rules):
    probe = CriticEngine()
    with live(probe, guardrail_rules_path=rules) as srv:
        ask(srv)
    [critic] = probe.critic_inputs
    main = probe.last_input
    vision = sum(v.vision_tokens for v in main.videos)
    main_tokens = probe.count_tokens(main.prompt) - 1 + vision
    critic_tokens = probe.count_tokens(critic.prompt) - 1 + vision
    assert main_tokens + 40 < critic_tokens  # the critic's prompt is the longer one
    engine = CriticEngine(max_model_len=critic_tokens + 8)  # room for the answer, not the critic
    with live(engine, guardrail_rules_path=rules) as srv:
        skipped = verdicts(srv, "skipped")
        r = ask(srv, max_tokens=20)
        assert verdicts(srv, "skipped") == skipped + 1
    assert r.choices[0].message.content == "B" and engine.critic_inputs == []


# ------------------------------------------------------------------------ real vLLM engine

@pytest.mark.engine
def test_critic_on_the_real_engine_per_request(server, client, media_dir):
    """The session server (critic off by default) runs it for a request that asks: a second
    engine request on the same frames that writes tokens, a verdict counted, the answer kept.
    The tiny model's words are noise, so its verdict is `unknown` (and no finding)."""
    def scrape(name: str, **labels) -> float:
        text = httpx.get(server.base_url + "/metrics").text
        return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    judged = ("plausible", "implausible", "unknown")
    before = {"asks": scrape("cosmos_guardrail_critic_seconds_count"),
              "verdicts": sum(scrape("cosmos_guardrail_critic_verdicts_total", verdict=v)
                              for v in judged),
              "generated": scrape("vllm:generation_tokens_total")}
    r = client.chat.completions.create(
        model="cosmos-tiny", max_tokens=8, temperature=0,
        extra_body={"video_fps": 1, "guardrail_critic": True},
        messages=[{"role": "user", "content": [
            {"type": "video_url",
             "video_url": {"url": (media_dir / "drv_predict1_dashcam_batch4.mp4").as_uri()}},
            {"type": "text", "text": QUESTION}]}])
    assert scrape("cosmos_guardrail_critic_seconds_count") >= before["asks"] + 1
    assert sum(scrape("cosmos_guardrail_critic_verdicts_total", verdict=v)
               for v in judged) >= before["verdicts"] + 1  # not an error, not skipped
    # the critic's own tokens, beyond the answer's
    assert scrape("vllm:generation_tokens_total") > (before["generated"]
                                                     + r.usage.completion_tokens)
    choice = r.choices[0]
    assert choice.finish_reason == "length" and r.usage.completion_tokens == 8
    report = choice.model_extra["guardrail"]
    assert report["verdict"] in ("pass", "flag")
    assert all(f["rule_id"] != RULE_ID or f["message"].startswith("the model critic")
               for f in report["findings"])
