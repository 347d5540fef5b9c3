"""Where `make test`'s time goes: each pytest worker's modules, when they ran and for how long.

    .venv/bin/python benchmarks/suite_timeline.py [--from DIR] [-- PYTEST_ARGS ...]

Runs the test suite as `make test` does (`python -m pytest`, pyproject.toml's options: two
xdist workers), with this file as a pytest plugin (`-p suite_timeline`) that appends each test's
start and end to DIR/<worker>.jsonl (benchmarks/work/suite_timeline/). `--from DIR` only reads a
timeline recorded earlier. The table shows, per worker, each module (or xdist group) in the
order it ran: when it started and ended, in seconds from the first test, and its own time; the
first test that needs the trained model waits for the training in its setup. Results:
benchmarks/results/suite_timeline.{md,json}. Needs what `make test` needs (redis-server,
chromium, chromedriver, haproxy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIMELINE = ROOT / "benchmarks" / "work" / "suite_timeline"
DIR_VARIABLE = "KEFU_SUITE_TIMELINE"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """The plugin: one line per test, setup to teardown."""
    start = time.time()
    yield
    folder = Path(os.environ.get(DIR_VARIABLE, TIMELINE))
    folder.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with (folder / f"{worker}.jsonl").open("a", encoding="utf-8") as log:
        log.write(json.dumps({"test": item.nodeid, "start": start, "end": time.time()}) + "\n")


def modules(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Per worker, its modules in the order they ran: start and end (seconds from the first
    test of any worker) and the sum of their tests' times."""
    tests = {path.stem: [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
             for path in sorted(folder.glob("*.jsonl"))}
    if not tests:
        raise SystemExit(f"{folder}: no timeline (*.jsonl) there")
    first = min(test["start"] for ran in tests.values() for test in ran)
    table: dict[str, list[dict[str, Any]]] = {}
    for worker, ran in tests.items():
        rows: list[dict[str, Any]] = []
        for test in sorted(ran, key=lambda t: t["start"]):
            module = test["test"].split("::")[0]
            if not rows or rows[-1]["module"] != module:
                rows.append({"module": module, "start": test["start"] - first, "seconds": 0.0})
            rows[-1]["end"] = test["end"] - first
            rows[-1]["seconds"] += test["end"] - test["start"]
        table[worker] = [{key: round(value, 1) if isinstance(value, float) else value for key, value in row.items()}
                         for row in rows]
    return table


def main() -> None:
    import reproduce  # a sibling module

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", type=Path, default=None, metavar="DIR",
                        help="read a timeline recorded earlier instead of running the suite")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args()
    command = reproduce.command(__file__)
    wall = None
    folder = args.source or TIMELINE
    if args.source is None:
        for old in TIMELINE.glob("*.jsonl"):
            old.unlink()
        env = {**os.environ, DIR_VARIABLE: str(TIMELINE), "RASA_TELEMETRY_ENABLED": "false",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH")]))}
        started = time.monotonic()
        completed = subprocess.run([sys.executable, "-m", "pytest", "-p", "suite_timeline", *args.pytest_args],
                                   cwd=ROOT, env=env)
        wall = round(time.monotonic() - started, 1)
        if completed.returncode != 0:
            print(f"pytest exited {completed.returncode}; the timeline is still written", file=sys.stderr)
    table = modules(folder)
    lines = [*reproduce.lines(command), "", "# The test suite's timeline", "",
             f"`benchmarks/suite_timeline.py` on {platform.machine()}, {os.cpu_count()} cores, "
             f"{datetime.now(timezone.utc):%Y-%m-%d}, commit {reproduce.commit()}"
             + (f"; pytest ran {wall:.0f} s." if wall else "."), ""]
    for worker, rows in table.items():
        lines += [f"## {worker}: last test ended at {rows[-1]['end']:.0f} s", "",
                  "| module | start (s) | end (s) | its tests (s) |", "|---|---|---|---|"]
        lines += [f"| {row['module']} | {row['start']:.0f} | {row['end']:.0f} | {row['seconds']:.0f} |" for row in rows]
        lines.append("")
    reproduce.save("suite_timeline", lines, {"command": command, "commit": reproduce.commit(),
                                             "pytest_seconds": wall, "workers": table})


if __name__ == "__main__":
    main()
