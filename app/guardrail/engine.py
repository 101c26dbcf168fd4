"""The guardrail: load a rule file once, check each parsed output, decide a verdict by policy.

Policy maps each severity to `off` (rules of that severity are not even run), `annotate`
(findings are reported, verdict `flag`) or `block` (verdict `block`: the server withholds the
answer). The strongest action among the findings decides the verdict.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

import yaml

from app.guardrail.rules import (FORMAT_CONDITIONS, RULE_TYPES, SEVERITIES, DerivedRule, Document,
                                 Finding, FormatRule, FreeFallRule, GuardrailContext,
                                 ProbabilityRule, QuantityRule, QuantityRules, Rule, Severity,
                                 TimestampRule)
from app.guardrail.scan import Scanner, Wanted, to_si
from app.guardrail.scanned import ScannedText
from app.reasoning import ParsedOutput

Policy = Literal["off", "annotate", "block"]
POLICIES: tuple[Policy, ...] = ("off", "annotate", "block")
Verdict = Literal["pass", "flag", "block"]
VERDICTS: tuple[Verdict, ...] = ("pass", "flag", "block")
DEFAULT_POLICY: dict[Severity, Policy] = {s: "annotate" for s in SEVERITIES}


@dataclass(frozen=True)
class GuardrailResult:
    verdict: Verdict
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "findings": [f.to_dict() for f in self.findings]}


def parse_policy(text: str) -> dict[Severity, Policy]:
    """'critical=block,warning=annotate' -> a full policy (unnamed severities: annotate)."""
    policy = dict(DEFAULT_POLICY)
    for item in filter(None, (p.strip() for p in text.split(","))):
        severity, _, action = item.partition("=")
        if severity not in SEVERITIES or action not in POLICIES:
            raise ValueError(f"bad policy item {item!r}: want SEVERITY=ACTION with SEVERITY in "
                             f"{SEVERITIES} and ACTION in {POLICIES}")
        policy[severity] = action  # type: ignore[index]
    return policy


def _validated(policy: Mapping[str, str]) -> dict[Severity, Policy]:
    out = dict(DEFAULT_POLICY)
    for severity, action in policy.items():
        if severity not in SEVERITIES or action not in POLICIES:
            raise ValueError(f"bad guardrail policy {severity!r}: {action!r}")
        out[severity] = action  # type: ignore[index]
    return out


_PLACEHOLDERS = dict.fromkeys(
    ("value", "limit", "object", "duration", "answer", "reasoning", "choices", "arithmetic"), "")


def build_rule(spec: dict[str, Any], object_classes: tuple[str, ...]) -> Rule:
    """One entry of the YAML `rules` list; errors name the rule so authors can find it."""
    spec = dict(spec)
    rule_id = spec.pop("id", None)
    try:
        kind = RULE_TYPES.get(spec.pop("type"))  # type: ignore[arg-type]
        if kind is None:
            raise ValueError(f"type must be one of {sorted(RULE_TYPES)}")
        severity = spec.pop("severity")
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {severity!r}")
        args: dict[str, Any] = {"id": rule_id, "severity": severity, "message": spec.pop("message")}
        args["message"].format(**_PLACEHOLDERS)
        if kind is QuantityRule:
            args["dimension"] = spec.pop("dimension")
            args["objects"] = frozenset(spec.pop("objects", ()))
            unknown = args["objects"] - set(object_classes)
            if unknown:
                raise ValueError(f"unknown object classes {sorted(unknown)}")
            for bound in ("min", "max"):
                if bound in spec:
                    text = str(spec.pop(bound))
                    value, dim = to_si(text)
                    if dim != args["dimension"]:
                        raise ValueError(f"{bound} {text!r} is a {dim}, not a {args['dimension']}")
                    args[bound], args[f"{bound}_text"] = value, text
            for key in ("requires", "unless", "unless_text", "requires_text"):
                if key in spec:
                    args[key] = re.compile(spec.pop(key), re.IGNORECASE)
            if "within" in spec:
                args["within"] = spec.pop("within")
                if args["within"] not in ("sentence", "clause"):
                    raise ValueError(f"within must be sentence or clause, not {args['within']!r}")
        elif kind is ProbabilityRule:
            args.update(ProbabilityRule.patterns(spec.pop("keywords"),
                                                 spec.pop("percent_keywords", [])))
        elif kind is TimestampRule:
            args.update({k: float(spec.pop(k)) for k in ("tolerance_s", "tolerance_ratio")
                         if k in spec})
            if "unless" in spec:
                args["unless"] = re.compile(spec.pop("unless"), re.IGNORECASE)
        elif issubclass(kind, DerivedRule):
            if "unless" in spec:
                args["unless"] = re.compile(spec.pop("unless"), re.IGNORECASE)
            if "tolerance" in spec:
                args["tolerance"] = float(spec.pop("tolerance"))
                if args["tolerance"] <= 0:
                    raise ValueError("tolerance must be above 0")
            if kind is FreeFallRule and "max" in spec:
                text = str(spec.pop("max"))
                value, dim = to_si(text)
                if dim != "acceleration":
                    raise ValueError(f"max {text!r} is a {dim}, not an acceleration")
                args["max"] = value
        elif kind is FormatRule:
            args["condition"] = spec.pop("condition")
            if args["condition"] not in FORMAT_CONDITIONS:
                raise ValueError(f"condition must be one of {FORMAT_CONDITIONS}")
        if spec:
            raise ValueError(f"unknown keys {sorted(spec)}")
        return kind(**args)
    except KeyError as e:
        raise ValueError(f"guardrail rule {rule_id!r}: missing key {e}") from e
    except (IndexError, ValueError, TypeError, AttributeError, re.error) as e:
        raise ValueError(f"guardrail rule {rule_id!r}: {e}") from e


class Guardrail:
    def __init__(self, scanner: Scanner, rules: Iterable[Rule],
                 policy: Mapping[str, str] | None = None):
        self.scanner = scanner
        rules = list(rules)
        quantity_rules = tuple(r for r in rules if isinstance(r, QuantityRule))
        # Derived kinematics take each object class's bounds from the quantity rules.
        self.rules = [r.bind(quantity_rules) if isinstance(r, DerivedRule) else r for r in rules]
        self._checks = [QuantityRules(quantity_rules),
                        *(r for r in self.rules if not isinstance(r, QuantityRule))]
        self.policy = _validated(policy or {})

    @classmethod
    def from_yaml(cls, path: str | Path | None = None,
                  policy: Mapping[str, str] | None = None) -> "Guardrail":
        """Load a rule file; None = the shipped `default_rules.yaml`."""
        if path is None:
            where = "default_rules.yaml"
            text = resources.files("app.guardrail").joinpath("default_rules.yaml").read_text()
        else:
            where = str(path)
            text = Path(path).read_text()
        # Every mistake is reported at load time (the server refuses to start), naming the file
        # and the section, rule or key.
        try:
            spec = yaml.safe_load(text) or {}
            if not isinstance(spec, dict):
                raise ValueError("a rule file is a mapping with units, objects and rules")
            unknown = sorted(set(spec) - {"version", "units", "objects", "people", "not_claims",
                                          "rules"})
            if unknown:
                raise ValueError(f"unknown top-level keys {unknown}")
            scanner = Scanner(spec.get("units") or {}, spec.get("objects") or {},
                              spec.get("people") or [], spec.get("not_claims") or {})
            rules = [build_rule(r, scanner.object_classes) for r in spec.get("rules") or []]
        except yaml.YAMLError as e:
            raise ValueError(f"{where}: not valid YAML: {e}") from e
        except (ValueError, TypeError, AttributeError) as e:
            raise ValueError(f"{where}: {e}") from e
        ids = [r.id for r in rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates or None in ids:
            raise ValueError(f"{where}: guardrail rules need unique ids; duplicated: {duplicates}")
        return cls(scanner, rules, policy)

    @property
    def may_block(self) -> bool:
        """True if some verdict could be `block`: streams must then hold the answer back."""
        return "block" in self.policy.values()

    @property
    def enabled(self) -> bool:
        return any(action != "off" for action in self.policy.values())

    @property
    def rule_ids(self) -> list[str]:
        return [r.id for r in self.rules]

    def check(self, parsed: ParsedOutput, context: GuardrailContext | None = None,
              policy: Mapping[str, str] | None = None) -> GuardrailResult:
        actions = self.policy if policy is None else _validated(policy)
        active = frozenset(severity for severity, action in actions.items() if action != "off")
        context = context or GuardrailContext()
        checks = [c for c in self._checks if not isinstance(c, Rule) or c.severity in active]
        doc = Document(parsed, context, self.scanner, active,
                       lambda st: _wanted(checks, context, active, st),
                       kinematics=any(isinstance(c, DerivedRule) for c in checks))
        findings = list(dict.fromkeys(f for c in checks for f in c.check(doc)))
        findings.sort(key=lambda f: f.span)
        taken = {actions[f.severity] for f in findings}
        verdict: Verdict = "block" if "block" in taken else "flag" if findings else "pass"
        return GuardrailResult(verdict, findings)


def _wanted(checks: list[Rule | QuantityRules], context: GuardrailContext,
            active: frozenset[str], st: ScannedText) -> Wanted:
    """The quantities worth building: outside the bounds of some check that reads them."""
    wanted: dict[str, tuple[float, float]] = {}
    for c in checks:
        if type(c).wants is Rule.wants:  # reads no quantities; spares a call per rule
            continue
        for dim, (lo, hi) in c.wants(context, active, st).items():
            old_lo, old_hi = wanted.get(dim, (-math.inf, math.inf))
            wanted[dim] = (max(lo, old_lo), min(hi, old_hi))
    return wanted
