"""The longer fuzz run (`make fuzz`, `python -m tests.fuzz_run`): the targets of tests/test_fuzz.py with many more examples.

    .venv/bin/python -m tests.fuzz_run                         # every target, FUZZ_EXAMPLES each
    FUZZ_EXAMPLES=500 .venv/bin/python -m tests.fuzz_run unit-lookup value-parser

Environment:
    FUZZ_EXAMPLES  examples per target (default 20000)
    FUZZ_SEED      a fixed seed to repeat a run (default: a fresh random run each time)

Prints, per target, how many examples ran, how long it took and (for HTTP targets) the statuses seen;
exits 1 when any target found a failure (its falsifying example is printed), 2 on a usage error.
"""
from __future__ import annotations

import logging
import os
import sys
import time
import traceback
import yaml

from service.app import create_app
from service.config import Settings
from .conftest import ROOT, TEST_KEY
from .contract_check import ResponseChecker
from .test_fuzz import TARGETS, Harness, build


def main(argv: list[str]) -> int:
    try:
        examples = int(os.environ.get("FUZZ_EXAMPLES", "20000"))
        seed = int(os.environ["FUZZ_SEED"]) if os.environ.get("FUZZ_SEED") else None
        chosen = argv or list(TARGETS)
        unknown = [name for name in chosen if name not in TARGETS]
        if examples < 1 or unknown:
            raise ValueError(f"unknown targets {unknown}" if unknown else "FUZZ_EXAMPLES must be at least 1")
    except ValueError as exc:
        print(f"usage error: {exc}; targets: {', '.join(TARGETS)}", file=sys.stderr)
        return 2

    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    harness = Harness(create_app(Settings(api_keys=(TEST_KEY,))), ResponseChecker(spec))
    # The service logs every unexpected error (type and place); the run reports those itself.
    logging.getLogger("labinterp").setLevel(logging.CRITICAL)
    print(f"fuzzing {len(chosen)} target(s), {examples} examples each"
          + (f", seed {seed}" if seed is not None else ", random seed"), flush=True)

    failed: list[str] = []
    total_start = time.perf_counter()
    for name in chosen:
        run = build(TARGETS[name], harness, seed=seed, max_examples=examples, derandomize=False, print_blob=True)
        start = time.perf_counter()
        try:
            run()
            verdict = "ok"
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except BaseException:  # any failure of a target is a finding to report
            verdict = "FAILED"
            failed.append(name)
            traceback.print_exc()
        elapsed = time.perf_counter() - start
        statuses = harness.statuses.get(name)
        seen = "" if not statuses else "  statuses " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
        print(f"{verdict:6} {name:26} {harness.calls[name]:8d} examples {elapsed:8.1f} s{seen}", flush=True)

    print(f"{sum(harness.calls[n] for n in chosen)} examples in {time.perf_counter() - total_start:.1f} s; "
          + (f"{len(failed)} target(s) failed: {', '.join(failed)}" if failed else "no failures"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
