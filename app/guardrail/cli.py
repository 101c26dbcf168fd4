"""`cosmos-serve guardrail`: run the guardrail on one model output, for rule authors.

Reads the model's raw text on stdin and prints the split and the verdict as JSON, so a rule file
can be tried on real outputs before it goes into a ConfigMap.
"""
from __future__ import annotations

import argparse
import json
import sys

from app.guardrail.choices import extract_choices
from app.guardrail.engine import Guardrail, parse_policy
from app.guardrail.rules import GuardrailContext
from app.reasoning import parse_reasoning


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cosmos-serve guardrail", description=__doc__.split("\n")[0])
    p.add_argument("--rules", help="YAML rule file (default: the shipped rules)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="the clip's duration")
    p.add_argument("--choices", metavar="A,B,C,D", help="option letters the question offers")
    p.add_argument("--question", help="question text: its options fill --choices if absent, and "
                   "counts and yes/no answers are checked against what it asks")
    p.add_argument("--policy", default="", metavar="SEV=ACTION,...",
                   help="e.g. critical=block,info=off (default: annotate everything)")
    p.add_argument("--truncated", action="store_true", help="the output hit max_tokens")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        guardrail = Guardrail.from_yaml(args.rules, parse_policy(args.policy))
    except (OSError, ValueError) as e:
        print(f"cosmos-serve guardrail: {e}", file=sys.stderr)
        return 2
    choices = ([c.strip().upper() for c in args.choices.split(",") if c.strip()]
               if args.choices else extract_choices(args.question))
    text = sys.stdin.read()
    parsed = parse_reasoning(text, truncated=args.truncated)
    result = guardrail.check(parsed, GuardrailContext(args.duration, choices, args.truncated,
                                                      question=args.question))
    print(json.dumps({"reasoning": parsed.reasoning, "answer": parsed.answer,
                      "outcome": parsed.outcome, **result.to_dict()}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
