"""prometheus.yml for a server on this machine: the compose file's config with its target and
rule paths rewritten, so deploy/stack.sh and the tests run the very scrape config and rules that
ship (one source, no copy to drift).

    python deploy/prometheus/local_config.py --target 127.0.0.1:8000 [--scrape-interval 15s]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "prometheus.yml"
JOB = "cosmos-serve"


def local_config(targets: list[str], scrape_interval: str | None = None) -> dict:
    config = yaml.safe_load(CONFIG.read_text())
    config["rule_files"] = [str((HERE / f).resolve()) for f in config.get("rule_files", [])]
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    job["static_configs"] = [{"targets": list(targets)}]
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", required=True, help="HOST:PORT of a server")
    parser.add_argument("--scrape-interval", default=None, help="e.g. 5s (default: the file's)")
    args = parser.parse_args(argv)
    yaml.safe_dump(local_config(args.target, args.scrape_interval), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
