"""Physical-plausibility guardrail over Cosmos-Reason1's parsed output, driven by a YAML file."""
from app.guardrail.choices import answer_letter, concluded_letter, extract_choices
from app.guardrail.engine import (DEFAULT_POLICY, POLICIES, VERDICTS, Guardrail, GuardrailResult,
                                  Policy, Verdict, parse_policy)
from app.guardrail.rules import SEVERITIES, Finding, GuardrailContext, Severity

__all__ = ["DEFAULT_POLICY", "POLICIES", "SEVERITIES", "VERDICTS", "Finding", "Guardrail",
           "GuardrailContext", "GuardrailResult", "Policy", "Severity", "Verdict",
           "answer_letter", "concluded_letter", "extract_choices", "parse_policy"]
