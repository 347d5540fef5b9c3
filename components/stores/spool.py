"""Writes kept on local disk while Redis is down, replayed in order when it is back.

One append-only JSON-lines file per process (`<name>-<host>-<pid>.jsonl`), flushed and
fsynced per record, so a crash loses nothing. A process claims a file before replaying it by
renaming it, so files left by a process that died are replayed exactly once, by the first
process started after it that reaches Redis.

Each line holds the time it was written next to the record. Replicas behind a load balancer
share the folder, and one conversation's messages go to several of them during an outage,
so a replay merges the files it claimed by that time: the conversation reaches Redis in the
order it was spoken, not file by file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CLAIMED = ".replaying"
REPLAY_LOCK = ".replay.lock"


class Spool:
    def __init__(self, folder: str | Path, name: str) -> None:
        self.folder = Path(folder)
        self.name = name
        self.path = self.folder / f"{name}-{socket.gethostname()}-{os.getpid()}.jsonl"
        # The disk is looked at once, for files a process that died left behind; after that
        # the flag follows this process's own appends and replays (no I/O per message).
        self._pending = self.folder.is_dir() and any(self._files())

    def append(self, record: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(_line(time.time(), record))
            handle.flush()
            os.fsync(handle.fileno())
        self._pending = True

    def pending(self) -> bool:
        """Whether records wait to be replayed: this process's, or those of one that died before it started."""
        return self._pending

    def _files(self) -> Iterator[Path]:
        yield from sorted(self.folder.glob(f"{self.name}-*.jsonl"))
        yield from sorted(self.folder.glob(f"{self.name}-*.jsonl{CLAIMED}-{os.getpid()}"))

    def replay(self, write: Callable[[dict[str, Any]], None]) -> int:
        """Pass every spooled record to `write`, oldest first across the files; returns how many
        were written.

        A record leaves the spool only after `write` returned, so an error (Redis failing
        again) keeps it, and what follows it, for the next replay. One replay runs at a time
        in the folder: a process that finds the files claimed waits until they are written, so
        it writes nothing newer before them."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / REPLAY_LOCK).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return self._replay_claimed(write)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _replay_claimed(self, write: Callable[[dict[str, Any]], None]) -> int:
        claimed: list[Path] = []
        for path in list(self._files()):
            target = path if CLAIMED in path.name else path.with_name(f"{path.name}{CLAIMED}-{os.getpid()}")
            if target != path:
                try:
                    path.rename(target)
                except FileNotFoundError:  # another process claimed it first
                    continue
            claimed.append(target)
        # sorted() is stable: lines written before the time was kept (0) stay in file order
        queue = sorted((entry for path in claimed for entry in self._read(path)), key=lambda entry: entry[0])
        for number, (_, record) in enumerate(queue):
            try:
                write(record)
            except Exception:
                claimed[0].write_text("".join(_line(*entry) for entry in queue[number:]), encoding="utf-8")
                for path in claimed[1:]:
                    path.unlink()
                raise
        for path in claimed:
            path.unlink()
        written = len(queue)
        self._pending = False
        if written:
            logger.info("Replayed %d spooled write(s) from %s", written, self.folder)
        return written

    @staticmethod
    def _read(path: Path) -> list[tuple[float, dict[str, Any]]]:
        """A claimed file's (time written, record) pairs; a torn last line after a crash is kept aside."""
        entries = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            try:
                entry = json.loads(line)
            except ValueError:
                with path.with_suffix(".unreadable").open("a", encoding="utf-8") as handle:
                    handle.write(line + "\n")
                logger.error("Spool %s line %d is not JSON; kept in %s", path, number + 1,
                             path.with_suffix(".unreadable"))
                continue
            if isinstance(entry, dict) and set(entry) == {"written", "record"}:
                entries.append((float(entry["written"]), entry["record"]))
            else:  # a line from before the time was kept
                entries.append((0.0, entry))
        return entries


def _line(written: float, record: dict[str, Any]) -> str:
    return json.dumps({"written": written, "record": record}, ensure_ascii=False) + "\n"
