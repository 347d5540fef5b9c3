"""The hand-off queue: conversations waiting for a member of staff.

The action server adds to it when a customer asks for a person, and staff
read and close it with `kefu handoff list` / `kefu handoff resume ID`. It is a
SQLite file, so it needs no server and survives restarts; both processes open
it by path. With `KEFU_ENCRYPTION_KEY` set the last messages are encrypted; ids and
times stay readable.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from components.stores.encryption import Cipher, reencrypt_sqlite_column

DEFAULT_HANDOFF_DB = ".kefu/handoffs.db"
HANDOFF_DB_ENV = "KEFU_HANDOFF_DB"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS handoff_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    last_messages TEXT NOT NULL,
    resumed_at TEXT
)
"""


@dataclass(frozen=True)
class HandoffRequest:
    """One customer's request to talk to a person."""

    id: int
    conversation_id: str
    requested_at: str
    last_messages: list[dict[str, str]]
    resumed_at: str | None

    @property
    def is_open(self) -> bool:
        return self.resumed_at is None


def handoff_db_path() -> Path:
    """The queue's file: `$KEFU_HANDOFF_DB`, else `.kefu/handoffs.db`."""
    return Path(os.environ.get(HANDOFF_DB_ENV) or DEFAULT_HANDOFF_DB)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class HandoffQueue:
    """Hand-off requests kept in a SQLite file."""

    def __init__(self, path: Path | None = None, cipher: Cipher | None = None) -> None:
        self.path = Path(path) if path else handoff_db_path()
        self.cipher = cipher or Cipher.from_environment()  # default: KEFU_ENCRYPTION_KEY

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        connection.execute(_SCHEMA)
        return connection

    def add(self, conversation_id: str, last_messages: list[dict[str, str]]) -> HandoffRequest:
        """Record a request; the conversation stays paused until it is resumed."""
        requested_at = _now()
        with self._connect() as connection:
            cursor = connection.execute(
                "INSERT INTO handoff_requests (conversation_id, requested_at, last_messages)"
                " VALUES (?, ?, ?)",
                (conversation_id, requested_at, self.cipher.encrypt(json.dumps(last_messages, ensure_ascii=False))),
            )
            request_id = cursor.lastrowid
        connection.close()
        return HandoffRequest(request_id, conversation_id, requested_at, last_messages, None)

    def requests(self, include_resumed: bool = False) -> list[HandoffRequest]:
        """Requests in the order they came in; open ones only unless asked."""
        query = "SELECT id, conversation_id, requested_at, last_messages, resumed_at FROM handoff_requests"
        if not include_resumed:
            query += " WHERE resumed_at IS NULL"
        with self._connect() as connection:
            rows = connection.execute(query + " ORDER BY id").fetchall()
        connection.close()
        return [
            HandoffRequest(row[0], row[1], row[2], self._messages(row[0], row[3]), row[4]) for row in rows
        ]

    def _messages(self, request_id: int, stored: str) -> list[dict[str, str]]:
        return json.loads(self.cipher.decrypt(stored, f"{self.path}, request {request_id}"))

    def open_request(self, conversation_id: str) -> HandoffRequest | None:
        return next(
            (r for r in self.requests() if r.conversation_id == conversation_id), None
        )

    def mark_resumed(self, conversation_id: str) -> int:
        """Close every open request of a conversation; returns how many were open."""
        with self._connect() as connection:
            cursor = connection.execute(
                "UPDATE handoff_requests SET resumed_at = ?"
                " WHERE conversation_id = ? AND resumed_at IS NULL",
                (_now(), conversation_id),
            )
            closed = cursor.rowcount
        connection.close()
        return closed

    def reencrypt(self) -> int:
        """Encrypts every request's messages under the newest key; returns how many were rewritten.
        Run again after an interruption, it skips what it had done."""
        connection = self._connect()
        rewritten = reencrypt_sqlite_column(connection, self.cipher, "handoff_requests", "last_messages",
                                            str(self.path))
        connection.close()
        return rewritten

    def forget(self, conversation_id: str) -> int:
        """Delete every request of a conversation; returns how many there were."""
        with self._connect() as connection:
            deleted = connection.execute(
                "DELETE FROM handoff_requests WHERE conversation_id = ?", (conversation_id,)
            ).rowcount
        connection.close()
        return deleted
