"""What the model critic (app/guardrail/critic.py) is asked and what its verdict does, over real
HTTP on the fake engine with a real clip: the request's own frames, the same adapter, each choice,
the block policy whole and streamed, and no critic where the rules already block.
"""
from __future__ import annotations


from app.config import Settings
from app.engine.fake import DEFAULT_SCRIPT
from app.guardrail.critic import RULE_ID
# `rules` is a fixture (the small rule file of these tests).
from tests.guardrail.critic_server import (NO, QUESTION, YES, ask, CriticEngine, rules, sample,
                                           verdicts)


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
