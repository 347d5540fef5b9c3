"""The `kefu` command and the hand-off flow it serves."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from components import __version__
from tests.conftest import KEFU, PROJECT, Assistant


def kefu(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([KEFU, *args], cwd=PROJECT, capture_output=True, text=True)


def test_version_and_help() -> None:
    assert kefu("--version").stdout.strip() == f"kefu {__version__}"
    assert "resume" in kefu("handoff", "--help").stdout


def test_help_lists_every_command_on_one_line() -> None:
    listed = {line.strip().split("  ")[0]: line.strip() for line in kefu("--help").stdout.splitlines()
              if line.startswith("  kefu ")}
    for command in ("handoff list", "handoff resume", "feedback stats", "feedback review", "feedback export",
                    "forget", "corpus build", "generator train", "generator reply", "evaluate"):
        line = listed.get(f"kefu {command}")
        assert line is not None and len(line.split("  ", 2)[-1].strip()) > 10, (command, listed)


def test_resume_without_an_open_request_is_refused(tmp_path: Path) -> None:
    completed = kefu("handoff", "resume", "nobody", "--db", str(tmp_path / "queue.db"))
    assert completed.returncode == 1
    assert "no open hand-off request for 'nobody'" in completed.stderr


def test_handoff_pauses_until_staff_resume(
    assistant: Assistant, handoff_db: Path, endpoints_file: Path
) -> None:
    conversation = f"handoff-{uuid.uuid4().hex[:8]}"
    assistant.say("my order 70021 never showed up", conversation)
    replies = assistant.say("I want to talk to a human agent", conversation)
    assert any("handing you over" in reply for reply in replies), replies

    listed = kefu("handoff", "list", "--db", str(handoff_db))
    assert listed.returncode == 0
    assert conversation in listed.stdout
    assert "customer: I want to talk to a human agent" in listed.stdout
    assert "customer: my order 70021 never showed up" in listed.stdout

    # Paused: the bot stays silent while staff take over.
    assert assistant.say("hello? anyone?", conversation) == []

    resumed = kefu(
        "handoff", "resume", conversation, "--db", str(handoff_db),
        "--endpoints", str(endpoints_file), "--domain", "domain.yml",
    )
    assert resumed.returncode == 0, resumed.stderr
    assert conversation not in kefu("handoff", "list", "--db", str(handoff_db)).stdout
    assert conversation in kefu("handoff", "list", "--all", "--db", str(handoff_db)).stdout

    replies = assistant.say("hi again", conversation)
    assert any("How can I help you today?" in reply for reply in replies), replies


@pytest.mark.parametrize("command", [["handoff", "list"], ["handoff", "resume", "x"]])
def test_handoff_commands_show_help(command: list[str]) -> None:
    assert "--db" in kefu(*command, "--help").stdout
