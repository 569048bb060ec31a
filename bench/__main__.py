"""``python -m bench [NAME ...]``: run benchmarks and rewrite their sections of BENCHMARKS.md."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .common import Unavailable, write_section

SUITES = {
    "engine": ("bench.engine", "Training engine and round loop"),
    "scale": ("bench.scale", "A million registered nodes"),
    "aggregation": ("bench.aggregation", "Aggregation"),
    "robustness": ("bench.robustness", "Strategies under attack"),
    "adaptation": ("bench.adaptation", "Network-aware adaptation"),
    "communication": ("bench.communication", "Communication levers"),
    "flower": ("bench.flower", "Side by side with Flower"),
    "pfl": ("bench.pfl_compare", "Side by side with pfl-research"),
    "ui": ("bench.ui", "Dashboard overhead"),
    "ray": ("bench.ray_backend", "Ray backend overhead"),
    "chain": ("bench.chain", "Chain recording gas"),
    "contribution": ("bench.contribution", "Contribution measure under attack"),
    "contention": ("bench.contention", "On a busy machine: thread policy"),
    "chainlag": ("bench.chain_lag", "Chain lag at the dashboard's pace"),
    "privacy": ("bench.privacy", "Privacy: DP-FedAvg utility and SecAgg cost"),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("names", nargs="*", metavar="NAME", help="suites: " + ", ".join(SUITES) + " (default: all)")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = p.parse_args(argv)
    if unknown := [n for n in args.names if n not in SUITES]:
        p.error(f"unknown suite {unknown[0]!r}; choose from " + ", ".join(SUITES))
    logging.basicConfig(level=logging.WARNING)
    for name in args.names or list(SUITES):
        module, title = SUITES[name]
        try:
            body = importlib.import_module(module).main()
        except Unavailable as exc:
            sys.stdout.write(f"\n## {title}\n\nskipped: {exc}\n")
            continue
        sys.stdout.write(f"\n## {title}\n\n{body}\n")
        if not args.no_write:
            write_section(title, body, f"python -m bench {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
