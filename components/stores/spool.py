"""Writes kept on local disk while Redis is down, replayed in order when it is back.

One append-only JSON-lines file per process (`<name>-<host>-<pid>.jsonl`), flushed and
fsynced per record, so a crash loses nothing. A process claims a file before replaying it by
renaming it, so files left by a process that died are replayed exactly once, by the first
process started after it that reaches Redis.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CLAIMED = ".replaying"


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
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
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
        """Pass every spooled record to `write`, oldest first; returns how many were written.

        A record leaves the spool only after `write` returned, so an error (Redis failing
        again) keeps it, and what follows it, for the next replay."""
        written = 0
        for path in list(self._files()):
            claimed = path if CLAIMED in path.name else path.with_name(f"{path.name}{CLAIMED}-{os.getpid()}")
            if claimed != path:
                try:
                    path.rename(claimed)
                except FileNotFoundError:  # another process claimed it first
                    continue
            lines = claimed.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines):
                try:
                    record = json.loads(line)
                except ValueError:  # a torn last line after a crash: kept aside, not replayed
                    with claimed.with_suffix(".unreadable").open("a", encoding="utf-8") as handle:
                        handle.write(line + "\n")
                    logger.error("Spool %s line %d is not JSON; kept in %s", claimed, number + 1,
                                 claimed.with_suffix(".unreadable"))
                    continue
                try:
                    write(record)
                except Exception:
                    claimed.write_text("".join(rest + "\n" for rest in lines[number:]), encoding="utf-8")
                    raise
                written += 1
            claimed.unlink()
        self._pending = False
        if written:
            logger.info("Replayed %d spooled write(s) from %s", written, self.folder)
        return written
