"""``python -m bench [NAME ...]``: run benchmarks and rewrite their sections of BENCHMARKS.md."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .common import write_section

SUITES = {"engine": ("bench.engine", "Training engine and round loop")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("names", nargs="*", choices=[*SUITES, []] and list(SUITES), help="suites (default: all)")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for name in args.names or list(SUITES):
        module, title = SUITES[name]
        body = importlib.import_module(module).main()
        sys.stdout.write(f"\n## {title}\n\n{body}\n")
        if not args.no_write:
            write_section(title, body, f"python -m bench {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
