"""What every benchmark script writes first in its results: the command that reproduces them.

A script imports this as a sibling (`python benchmarks/<script>.py` puts benchmarks/ on the path):

    command = reproduce.command(__file__)                       # also saved in the JSON as "command"
    lines = [*reproduce.lines(command, "needs `redis-server` on the PATH"), "", "# Title", ...]
    reproduce.save("name", lines, {"command": command, ...})    # results/name.{md,json}, and prints it
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def command(script: str) -> str:
    """The command line this process was started with, as run from the repository root:
    `.venv/bin/python benchmarks/<script>.py` and the arguments it was given."""
    return shlex.join([".venv/bin/python", f"benchmarks/{Path(script).name}", *sys.argv[1:]])


def commit() -> str:
    """The short hash of the checked-out commit, which a results file names."""
    root = Path(__file__).resolve().parents[1]
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                          text=True).stdout.strip()


def lines(runs: str | Mapping[str, str], note: str = "") -> list[str]:
    """The first lines of a results .md file, to be followed by a blank line.

    `runs` is the command of the one run that wrote the file, with `note` (if any) after it in
    brackets, or, for a file that merges the rows of several runs, each run's command mapped to
    a note on what it contributed ("" for none), listed one line per run."""
    if isinstance(runs, str):
        return [f"Reproduce: `{runs}`" + (f" ({note})." if note else "")]
    if note:
        raise ValueError("a note goes with a single command; with several, each run has its own")
    return ["Reproduce (one line per run):", "",
            *(f"- `{run}`" + (f" ({what})" if what else "") for run, what in runs.items())]


def save(name: str, markdown: Sequence[str], data: Mapping[str, Any]) -> None:
    """benchmarks/results/<name>.md (the lines) and <name>.json (`data`), then print the lines."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text("\n".join(markdown) + "\n", encoding="utf-8")
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print("\n".join(markdown))
