"""User feedback on generated replies: stored, summarised, reviewed and exported as corpus.

The action server records a rating (👍/👎) per generated reply, and the customer's
correction after a 👎. Staff approve or reject corrections (`kefu feedback review`), and
`kefu feedback export` writes up-voted pairs and approved corrections, PII-masked, as
corpus JSONL for `kefu corpus build` and `rasa train --finetune`.

The log is append-only: ratings, corrections and review decisions are entries keyed by the
reply's id, merged when read. With `REDIS_URL` set it is a Redis Stream (`XADD`), else a
SQLite file (`$KEFU_FEEDBACK_DB`, default `.kefu/feedback.db`). A write that Redis refuses
goes to a local spool and is replayed before the next read or write.

With `KEFU_ENCRYPTION_KEY` set an entry's `data` (the customer's message, the reply, the
correction) is encrypted; its kind, ids and time stay readable for `kefu forget`.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from components.stores.connection import REDIS_ERRORS, connect, redis_url
from components.stores.encryption import Cipher, reencrypt_sqlite_column
from components.stores.spool import Spool
from components.text import PiiMasker, detect_language

DEFAULT_FEEDBACK_DB = ".kefu/feedback.db"
FEEDBACK_DB_ENV = "KEFU_FEEDBACK_DB"
STREAM_KEY = "kefu:feedback"

# KEYS: the stream, a scratch key. ARGV: the last entry id read, then per entry read its id, its
# number of fields and the fields (with `data` re-encrypted). Streams cannot be edited, so this
# rebuilds the stream with the same ids, keeps entries added since the read, and swaps it in,
# all at once.
REENCRYPT_STREAM_SCRIPT = """
redis.call('DEL', KEYS[2])
local i = 2
while i <= #ARGV do
  local fields = tonumber(ARGV[i + 1])
  redis.call('XADD', KEYS[2], ARGV[i], unpack(ARGV, i + 2, i + 1 + fields))
  i = i + 2 + fields
end
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')) do
  redis.call('XADD', KEYS[2], entry[1], unpack(entry[2]))
end
redis.call('RENAME', KEYS[2], KEYS[1])
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    reply_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data TEXT NOT NULL
)
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class RatedReply:
    """Everything known about one generated reply's feedback."""

    reply_id: str
    conversation_id: str
    rated_at: str = ""
    user_message: str = ""
    bot_reply: str = ""
    intent: str | None = None
    model_id: str | None = None
    confidence: float | None = None
    rating: str | None = None  # up | down
    correction: str | None = None
    review: str | None = None  # approved | rejected, for a correction

    @property
    def day(self) -> str:
        return self.rated_at[:10]


@dataclass
class FeedbackLog:
    """The append-only log; see the module docstring."""

    path: Path | None = None
    url: str | None = None
    spool_dir: str = ".kefu/spool"
    cipher: Cipher | None = None  # default: KEFU_ENCRYPTION_KEY
    _red: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url or redis_url()
        self.path = Path(self.path or os.environ.get(FEEDBACK_DB_ENV) or DEFAULT_FEEDBACK_DB)
        self.cipher = self.cipher or Cipher.from_environment()
        if self.url:
            self._red = connect(self.url)
        self.spool = Spool(self.spool_dir, "kefu-feedback")

    @property
    def where(self) -> str:
        return f"the Redis stream {STREAM_KEY}" if self._red is not None else str(self.path)

    # writing

    def rate(self, reply: RatedReply) -> None:
        reply.rated_at = reply.rated_at or _now()
        data = {k: v for k, v in reply.__dict__.items() if k not in ("correction", "review")}
        self._append("rating", reply.reply_id, reply.conversation_id, data)

    def correct(self, reply_id: str, conversation_id: str, text: str) -> None:
        self._append("correction", reply_id, conversation_id, {"correction": text})

    def decide(self, reply_id: str, approved: bool) -> None:
        conversation = next((r.conversation_id for r in self.replies() if r.reply_id == reply_id), None)
        if conversation is None:
            raise KeyError(f"no feedback on reply {reply_id!r}")
        self._append("review", reply_id, conversation, {"review": "approved" if approved else "rejected"})

    def _append(self, kind: str, reply_id: str, conversation_id: str, data: dict[str, Any]) -> None:
        entry = {"kind": kind, "reply_id": reply_id, "conversation_id": conversation_id, "created_at": _now(),
                 "data": self.cipher.encrypt(json.dumps(data, ensure_ascii=False))}
        if self._red is None:
            self._write_sqlite(entry)
            return
        try:
            self._replay_spool()
            self._red.xadd(STREAM_KEY, entry)
        except REDIS_ERRORS:
            self.spool.append(entry)  # kept on disk; replayed before the next read or write

    def _replay_spool(self) -> None:
        if self.spool.pending():
            self.spool.replay(lambda entry: self._red.xadd(STREAM_KEY, entry))

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        connection.execute(_SCHEMA)
        return connection

    def _write_sqlite(self, entry: dict[str, str]) -> None:
        with self._connect() as connection:
            connection.execute("INSERT INTO feedback_entries (kind, reply_id, conversation_id, created_at, data) "
                               "VALUES (:kind, :reply_id, :conversation_id, :created_at, :data)", entry)
        connection.close()

    # reading

    def entries(self) -> list[dict[str, str]]:
        """Every entry as stored (`data` encrypted when a key is set), oldest first."""
        if self._red is None:
            with self._connect() as connection:
                rows = connection.execute("SELECT kind, reply_id, conversation_id, created_at, data "
                                          "FROM feedback_entries ORDER BY id").fetchall()
            connection.close()
            return [dict(zip(("kind", "reply_id", "conversation_id", "created_at", "data"), row, strict=True))
                    for row in rows]
        self._replay_spool()
        return [{key.decode(): value.decode() for key, value in fields.items()}
                for _, fields in self._red.xrange(STREAM_KEY)]

    def replies(self) -> list[RatedReply]:
        """Ratings merged with their corrections and review decisions, in rating order."""
        merged: dict[str, RatedReply] = {}
        for entry in self.entries():
            data = json.loads(self.cipher.decrypt(entry["data"], f"{self.where}, reply {entry['reply_id']}"))
            reply = merged.setdefault(entry["reply_id"], RatedReply(entry["reply_id"], entry["conversation_id"]))
            if entry["kind"] == "rating":
                for key, value in data.items():
                    setattr(reply, key, value)
            elif entry["kind"] == "correction":
                reply.correction, reply.review = data["correction"], None  # a new correction needs a new review
            elif entry["kind"] == "review":
                reply.review = data["review"]
        return [reply for reply in merged.values() if reply.rating]

    def reencrypt(self) -> int:
        """Encrypts every entry's `data` under the newest key; returns how many were rewritten.
        Run again after an interruption, it skips what it had done."""
        if self._red is None:
            connection = self._connect()
            rewritten = reencrypt_sqlite_column(connection, self.cipher, "feedback_entries", "data", str(self.path))
            connection.close()
            return rewritten
        self._replay_spool()
        args: list[Any] = [b"0-0"]
        rewritten = 0
        for entry_id, fields in self._red.xrange(STREAM_KEY):
            new = self.cipher.reencrypt(fields[b"data"].decode("utf-8"), f"{self.where}, entry {entry_id.decode()}")
            rewritten += new is not None
            fields = {**fields, b"data": new.encode("utf-8")} if new is not None else fields
            args[0] = entry_id
            args += [entry_id, 2 * len(fields), *(part for pair in fields.items() for part in pair)]
        if rewritten:
            self._red.eval(REENCRYPT_STREAM_SCRIPT, 2, STREAM_KEY, f"{STREAM_KEY}:reencrypting", *args)
        return rewritten

    def forget(self, conversation_id: str) -> int:
        """Deletes every entry of a conversation; returns how many went."""
        if self._red is None:
            with self._connect() as connection:
                deleted = connection.execute("DELETE FROM feedback_entries WHERE conversation_id = ?",
                                             (conversation_id,)).rowcount
            connection.close()
            return deleted
        self._replay_spool()
        ids = [entry_id for entry_id, fields in self._red.xrange(STREAM_KEY)
               if fields.get(b"conversation_id", b"").decode() == conversation_id]
        return int(self._red.xdel(STREAM_KEY, *ids)) if ids else 0


def satisfaction(replies: Iterable[RatedReply], by: str) -> list[tuple[str, int, int, float]]:
    """(group, 👍, ratings, share of 👍) per intent, model or day, busiest first."""
    up: Counter = Counter()
    total: Counter = Counter()
    for reply in replies:
        group = str(getattr(reply, by) or "-")
        total[group] += 1
        up[group] += reply.rating == "up"
    return [(group, up[group], count, up[group] / count) for group, count in total.most_common()]


def training_pairs(replies: Iterable[RatedReply], per_conversation: int = 3) -> list[dict[str, str]]:
    """Corpus lines from up-voted replies and approved corrections, PII-masked.

    At most `per_conversation` lines come from one conversation and a pair is exported once,
    so one customer cannot flood the training data; corrections count only once approved."""
    masker = PiiMasker()
    taken: Counter = Counter()
    seen: set[tuple[str, str]] = set()
    lines: list[dict[str, str]] = []
    by_conversation: dict[str, list[RatedReply]] = defaultdict(list)
    for reply in replies:
        by_conversation[reply.conversation_id].append(reply)
    for conversation_id, rated in by_conversation.items():
        for reply in rated:
            if reply.correction and reply.review == "approved":
                answer, source = reply.correction, "feedback-correction"
            elif reply.rating == "up" and reply.bot_reply:
                answer, source = reply.bot_reply, "feedback-up"
            else:
                continue
            question, answer = masker.mask(reply.user_message.strip()), masker.mask(answer.strip())
            if not question or not answer or (question, answer) in seen or taken[conversation_id] >= per_conversation:
                continue
            seen.add((question, answer))
            taken[conversation_id] += 1
            lines.append({"question": question, "answer": answer, "intent": reply.intent or "feedback",
                          "lang": detect_language(question), "source": source})
    return lines
