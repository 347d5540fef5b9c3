"""The outage spool of replicas that share one folder replays their writes in the order they were made."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.stores.spool import Spool


def test_writes_two_replicas_spooled_in_turn_are_replayed_in_turn(tmp_path: Path) -> None:
    # One conversation's messages went to two replicas in turn while Redis was down; each
    # replica spools to a file of its own (named by host and pid) in the shared folder.
    replicas = [Spool(tmp_path, "kefu-tracker"), Spool(tmp_path, "kefu-tracker")]
    replicas[0].path = tmp_path / "kefu-tracker-host-200.jsonl"
    replicas[1].path = tmp_path / "kefu-tracker-host-100.jsonl"  # sorts first by name
    for number in range(6):
        replicas[number % 2].append({"sender_id": "alice", "message": number})

    replayed: list[int] = []
    assert Spool(tmp_path, "kefu-tracker").replay(lambda record: replayed.append(record["message"])) == 6
    assert replayed == [0, 1, 2, 3, 4, 5]
    assert not list(tmp_path.glob("*.jsonl*"))


def test_what_a_failed_replay_did_not_write_is_replayed_next_time(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "kefu-tracker")
    for number in range(3):
        spool.append({"message": number})
    replayed: list[int] = []
    failures = [ConnectionError("Redis went down again")]

    def write(record: dict) -> None:
        if record["message"] == 1 and failures:
            raise failures.pop()
        replayed.append(record["message"])

    with pytest.raises(ConnectionError):
        spool.replay(write)
    assert spool.replay(write) == 2
    assert replayed == [0, 1, 2]
