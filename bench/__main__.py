"""Run every benchmark: ``python -m bench`` (or ``python -m bench scan`` for one).

Each ``bench/bench_*.py`` has ``main() -> None`` and prints ratios against its peers measured in
the same run. Benchmarks are never timed assertions in tests.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    wanted = set(sys.argv[1:])
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    for name in names:
        if wanted and name.removeprefix("bench_") not in wanted:
            continue
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
