"""What the model critic's tests share: a real clip and question, the critic's answers (Yes, No),
a fake engine whose critic answers as told (or fails, or is slow), a small rule file of their
own (the `rules` fixture), and asking a live server over the openai client, httpx and /metrics.
"""
from __future__ import annotations


import httpx
import pytest
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from app.engine.fake import FakeEngine
from app.guardrail.critic import CRITIC_SYSTEM_PROMPT
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
