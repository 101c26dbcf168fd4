"""The model critic (app/guardrail/critic.py): over real HTTP on the fake engine (a critic that
answers Yes, No, noise, fails or is slow) with a real clip, and once on the real vLLM CPU engine.

The rule file here is a small one of its own (format rules, and one speed bound the answers here
never break), so the rules' verdict is known whatever the shipped rules say; the critic's
finding is the one under test.

What the critic is asked: test_critic_prompt.py; its failures: test_critic_failures.py.
"""
from __future__ import annotations


import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.config import Settings
from app.guardrail.critic import RULE_ID, parse_verdict
# `rules` is a fixture (the small rule file of these tests).
from tests.guardrail.critic_server import NO, QUESTION, YES, ask, CriticEngine, rules


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
