"""The model critic's failures never fail the answer (app/guardrail/critic.py), over real HTTP on
the fake engine with a real clip: an engine error, the request's deadline, a client gone, no
room in the context.
"""
from __future__ import annotations

import json
import logging
import time

import httpx
# `rules` is a fixture (the small rule file of these tests).
from tests.guardrail.critic_server import ask, body, CriticEngine, rules, verdicts


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
            # Held in a name: a dropped iterator is closed at once, and with it the connection.
            lines = r.iter_lines()
            for line in lines:
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
