"""Rule files: a custom one replaces the shipped set; mistakes are reported with the rule id."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.guardrail import Guardrail, GuardrailContext
from app.reasoning import parse_reasoning

MINIMAL = """
units: {knots: knot, kn: knot, m: m}
objects: {boat: [Boat, ship], dinghy: [rubber dinghy]}
rules:
  - {id: speed.boat, type: quantity, dimension: speed, objects: [boat], max: 60 knot,
     severity: critical, message: "{object} at {value} (max {limit})"}
  - {id: speed.dinghy, type: quantity, dimension: speed, objects: [dinghy], max: 40 knot,
     severity: warning, message: "{object} at {value} (max {limit})"}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_custom_file_replaces_the_shipped_rules(tmp_path):
    guardrail = Guardrail.from_yaml(_write(tmp_path, MINIMAL))
    assert guardrail.rule_ids == ["speed.boat", "speed.dinghy"]
    text = ("<think>The Boats sail at 90 knots. Ships, in fact. The rubber-dinghy does 50 kn, "
            "the ships 50 kn.</think>")
    result = guardrail.check(parse_reasoning(text), GuardrailContext())
    assert [(f.rule_id, f.message) for f in result.findings] == [
        ("speed.boat", "boats at 90 knots (max 60 knot)"),
        ("speed.dinghy", "rubber-dinghy at 50 kn (max 40 knot)")]


def test_shipped_rules_cover_every_rule_type():
    types = {type(r).type for r in Guardrail.from_yaml().rules}
    assert types == {"quantity", "probability", "timestamp", "choice_mismatch",
                     "choice_not_offered", "format", "derived_acceleration", "derived_speed",
                     "yes_no_mismatch", "count_mismatch", "free_fall", "compared_height",
                     "compared_mass"}


@pytest.mark.parametrize("rule,error", [
    ("{id: x, type: nope, severity: info, message: m}", "type must be one of"),
    ("{id: x, type: format, condition: no_answer, severity: severe, message: m}", "severity"),
    ("{id: x, type: quantity, dimension: speed, max: 3 m, severity: info, message: m}",
     "is a length, not a speed"),
    ("{id: x, type: quantity, dimension: speed, objects: [car], max: 3 m/s, severity: info, "
     "message: m}", "unknown object classes"),
    ("{id: x, type: format, condition: no_answer, severity: info, message: m, colour: red}",
     "unknown keys"),
    ("{id: x, type: format, condition: no_answer, severity: info, message: '{speed}'}", "speed"),
    ("{id: x, type: format, condition: late_answer, severity: info, message: m}", "condition"),
])
def test_rule_errors_name_the_rule(tmp_path, rule, error):
    path = _write(tmp_path, f"objects: {{boat: ['boats?']}}\nrules:\n  - {rule}\n")
    with pytest.raises(ValueError, match="guardrail rule 'x'") as info:
        Guardrail.from_yaml(path)
    assert error in str(info.value)


def test_duplicate_ids_are_refused(tmp_path):
    dup = "rules:\n" + "  - {id: x, type: format, condition: no_answer, severity: info, message: m}\n" * 2
    with pytest.raises(ValueError, match="unique ids"):
        Guardrail.from_yaml(_write(tmp_path, dup))


@pytest.mark.parametrize("text,error", [
    ("units: {knots: not_a_unit}\n", "units: 'knots'"),
    ("objects: {boat: boat}\n", "objects: 'boat'"),
    ("rules:\n  - {id: x, type: format, condition: no_answer, severity: info}\n",
     "guardrail rule 'x': missing key 'message'"),
    ("rules:\n  - {id: x, type: derived_speed, severity: info, message: m, tolerance: 0}\n",
     "guardrail rule 'x': tolerance must be above 0"),
    ("rules:\n  - {id: x, type: derived_speed, severity: info, message: m, unless: '('}\n",
     "guardrail rule 'x'"),
    ("rulez: []\n", "unknown top-level keys ['rulez']"),
    ("rules: [\n", "not valid YAML"),
])
def test_bad_files_fail_at_load_naming_file_and_key(tmp_path, text, error):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        Guardrail.from_yaml(path)
    assert str(info.value).startswith(f"{path}: ")
    assert error in str(info.value)


def test_a_file_of_format_rules_only_checks_text_with_numbers(tmp_path):
    # No units and no quantity rules: numbers are not quantities, and the check still runs.
    path = _write(tmp_path, """
rules:
  - {id: format.no_answer, type: format, condition: no_answer, severity: warning,
     message: "the output has no answer"}
""")
    guardrail = Guardrail.from_yaml(path)
    ctx = GuardrailContext(duration_s=10, choices=["A", "B"])
    ok = guardrail.check(parse_reasoning("<think>The car moves at 30 km/h.</think>\n\n"
                                         "<answer>A</answer>"), ctx)
    assert ok.verdict == "pass" and ok.findings == []
    missing = guardrail.check(parse_reasoning("<think>It goes 30 km/h for 3 s.</think>"), ctx)
    assert [f.rule_id for f in missing.findings] == ["format.no_answer"]
