"""Exactly-once processing per client message id, for the REST and web chat channels.

A client that lost a reply cannot tell "not processed" from "processed, reply lost", so it
sends the message again with the same `message_id`. The first request for a (sender, id)
claims it and processes the message; the replies are then recorded for `expiry_hours`, and a
repeat gets them back without the bot seeing the message again. A repeat that arrives while
the first is still being processed waits for it. The record lives in Redis when `REDIS_URL`
is set, so every replica shares it; in process otherwise (bounded, least recently used out).
While Redis is unreachable each process keeps its own record.

A claim is kept alive while its processing runs and expires `claim_seconds` after its server
died, so a retry then processes the message on another replica. A server can die after the
turn was stored but before its replies were recorded; Redis keeps a mark of every id that was
ever claimed, and a retry of a marked id first looks for the message in the conversation and,
when it is there, answers with that turn's replies instead of running it again.

With `KEFU_ENCRYPTION_KEY` set the replies recorded in Redis are encrypted; the key (sender
and message id) and its expiry stay readable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import response
from sanic.response import HTTPResponse

from components.stores.connection import OUTAGE, REDIS_ERRORS, connect, redis_url
from components.stores.encryption import Cipher

logger = logging.getLogger(__name__)

MAX_MESSAGE_ID_CHARS = 128
CLAIMED = "claimed "  # a record's value while its message is processed: the claim's token follows
WHERE = "the message id record"
KEY_PREFIX = "kefu:message:"
CLAIMED_MARK = ":claimed"  # suffix of the key that says an id was claimed at least once

Replies = list[dict[str, Any]]
# What CollectingOutputChannel keeps of a bot message, besides its recipient.
COLLECTED_FIELDS = ("text", "image", "buttons", "attachment", "custom", "elements", "quick_replies")

# Only the claim's owner may extend or drop it: a claim that expired may belong to a retry now.
EXTEND_SCRIPT = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end"
RELEASE_SCRIPT = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end"
# A re-encrypted record replaces the one read, with the time it had left, unless it changed since.
REENCRYPT_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1
"""


class InvalidMessageId(ValueError):
    pass


class StillProcessing(Exception):
    """The first request for this id has not finished within `wait_seconds`."""


def message_key(sender: str, message_id: str) -> str:
    """The record's key; the sender in braces is Redis Cluster's hash tag."""
    return f"{KEY_PREFIX}{{{sender}}}:{message_id}"


def message_id_of(body: dict[str, Any]) -> str | None:
    """The body's `message_id`, or None when it has none."""
    message_id = body.get("message_id")
    if message_id is None:
        return None
    if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_MESSAGE_ID_CHARS:
        raise InvalidMessageId(f"\"message_id\" must be a string of 1 to {MAX_MESSAGE_ID_CHARS} characters, "
                               "e.g. a UUID; leave it out to have every request processed")
    return message_id


@dataclass
class MessageIdSettings:
    expiry_hours: float = 24  # how long a repeated id still gets the first replies
    claim_seconds: float = 30  # how soon a retry may take over the message of a server that died
    wait_seconds: float = 60  # how long a repeat waits for the first; then 503, and the client retries
    local_records: int = 10_000  # ids remembered in process without Redis

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any]) -> MessageIdSettings:
        return cls(expiry_hours=float(credentials.get("message_id_expiry_hours", cls.expiry_hours)))


class Records(Protocol):
    def claim(self, key: str, token: str, seconds: float) -> bool: ...
    def read(self, key: str) -> str | None: ...
    def extend(self, key: str, token: str, seconds: float) -> None: ...
    def release(self, key: str, token: str) -> None: ...
    def finish(self, key: str, replies: str, seconds: float) -> None: ...
    def claimed_before(self, key: str, seconds: float) -> bool: ...


class LocalRecords:
    """In process: values that expire, at most `capacity`, least recently used out."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.entries: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def read(self, key: str) -> str | None:
        entry = self.entries.get(key)
        if entry is None or entry[0] <= time.monotonic():
            self.entries.pop(key, None)
            return None
        self.entries.move_to_end(key)
        return entry[1]

    def _write(self, key: str, value: str, seconds: float) -> None:
        self.entries[key] = (time.monotonic() + seconds, value)
        self.entries.move_to_end(key)
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def claim(self, key: str, token: str, seconds: float) -> bool:
        if self.read(key) is not None:
            return False
        self._write(key, CLAIMED + token, seconds)
        return True

    def extend(self, key: str, token: str, seconds: float) -> None:
        if self.read(key) == CLAIMED + token:
            self._write(key, CLAIMED + token, seconds)

    def release(self, key: str, token: str) -> None:
        if self.read(key) == CLAIMED + token:
            del self.entries[key]

    def finish(self, key: str, replies: str, seconds: float) -> None:
        self._write(key, replies, seconds)

    def claimed_before(self, key: str, seconds: float) -> bool:
        return False  # a claim of this process ends with its replies or its release, never lost


class RedisRecords:
    """In Redis, shared by every replica: one string per (sender, id) with its own expiry, the
    replies encrypted when a key is set."""

    def __init__(self, client: redis.Redis, cipher: Cipher | None = None) -> None:
        self.client = client
        self.cipher = cipher or Cipher.from_environment()  # default: KEFU_ENCRYPTION_KEY
        self.extend_script = client.register_script(EXTEND_SCRIPT)
        self.release_script = client.register_script(RELEASE_SCRIPT)
        self.reencrypt_script = client.register_script(REENCRYPT_SCRIPT)

    def claim(self, key: str, token: str, seconds: float) -> bool:
        return bool(self.client.set(key, CLAIMED + token, nx=True, px=int(seconds * 1000)))

    def read(self, key: str) -> str | None:
        value = self.client.get(key)
        # a claim is no token, so it reads as it is
        return self.cipher.decrypt(value.decode("utf-8"), f"{WHERE} {key} in Redis") if value is not None else None

    def extend(self, key: str, token: str, seconds: float) -> None:
        self.extend_script(keys=[key], args=[CLAIMED + token, int(seconds * 1000)])

    def release(self, key: str, token: str) -> None:
        self.release_script(keys=[key], args=[CLAIMED + token])

    def finish(self, key: str, replies: str, seconds: float) -> None:
        self.client.set(key, self.cipher.encrypt(replies), px=int(seconds * 1000))

    def claimed_before(self, key: str, seconds: float) -> bool:
        """Marks `key` as claimed; True when it already was, by a claim that ended without replies."""
        return not self.client.set(key + CLAIMED_MARK, "1", nx=True, px=int(seconds * 1000))

    def forget(self, sender: str) -> int:
        """Deletes every record of `sender`'s messages (claims and replies); returns how many."""
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", message_key(sender, "")) + "*"
        keys = list(self.client.scan_iter(match=pattern, count=1000))
        return int(self.client.delete(*keys)) if keys else 0

    def reencrypt(self) -> int:
        """Encrypts every recorded reply under the newest key; returns how many were rewritten.
        Run again after an interruption, it skips what it had done."""
        rewritten = 0
        for key in self.client.scan_iter(match=f"{KEY_PREFIX}*", count=1000):
            value = self.client.get(key)
            if value is None or value.startswith(CLAIMED.encode()) or key.endswith(CLAIMED_MARK.encode()):
                continue
            new = self.cipher.reencrypt(value.decode("utf-8"), f"{WHERE} {key.decode()} in Redis")
            if new is not None:
                rewritten += int(self.reencrypt_script(keys=[key], args=[value, new]))
        return rewritten


class ProcessedMessages:
    """Which message ids were processed, and their replies."""

    def __init__(self, settings: MessageIdSettings | None = None) -> None:
        self.settings = settings or MessageIdSettings()
        self.local = LocalRecords(self.settings.local_records)
        url = redis_url()
        # The stores' timeouts: a write held up by Redis's fsync on busy disks is not an outage, and
        # an outage here sends this process's tracker writes to its spool too (OUTAGE is shared).
        self.shared = RedisRecords(connect(url)) if url else None

    def _records(self) -> Records:
        return self.shared if self.shared is not None and OUTAGE.should_try() else self.local

    async def once(self, sender: str, message_id: str, process: Callable[[], Awaitable[Replies]],
                   stored: Callable[[], Awaitable[Replies | None]] | None = None) -> Replies:
        """The replies of the first processing of `message_id` from `sender`; `process` runs only
        when there are none yet. `stored` finds the replies of a turn that was stored but whose
        server died before recording them. Raises StillProcessing, or what `process` raised."""
        key = message_key(sender, message_id)
        token = uuid.uuid4().hex
        records, replies = await self._wait_for_turn(key, token)
        if replies is not None:
            return replies
        if stored is not None and self._claimed_before(records, key):
            process = _first_found(stored, process)
        # Shielded: a client that hangs up mid-turn does not cut the turn short; its retry gets the replies.
        return await asyncio.shield(asyncio.ensure_future(self._process(records, key, token, process)))

    async def _wait_for_turn(self, key: str, token: str) -> tuple[Records, Replies | None]:
        """Claims `key` (no replies yet) or returns the recorded replies."""
        deadline = time.monotonic() + self.settings.wait_seconds
        pause = 0.02
        while True:
            records = self._records()
            try:
                if records.claim(key, token, self.settings.claim_seconds):
                    return records, None
                value = records.read(key)
            except REDIS_ERRORS as error:  # the next round uses the local record
                OUTAGE.failed(WHERE, error)
                continue
            if value is not None and not value.startswith(CLAIMED):
                return records, json.loads(value)
            if time.monotonic() > deadline:
                raise StillProcessing(key)
            await asyncio.sleep(pause)
            pause = min(2 * pause, 0.2)

    async def _process(self, records: Records, key: str, token: str,
                       process: Callable[[], Awaitable[Replies]]) -> Replies:
        keep_claim = asyncio.ensure_future(self._keep_claim(records, key, token))
        try:
            replies = await process()
        except BaseException:
            self._quietly(records.release, key, token)  # not processed: a retry may try again
            raise
        finally:
            keep_claim.cancel()
        recorded, seconds = json.dumps(replies), self.settings.expiry_hours * 3600
        try:
            records.finish(key, recorded, seconds)
        except REDIS_ERRORS as error:  # Redis went down mid-turn: this process at least remembers
            OUTAGE.failed(WHERE, error)
            self.local.finish(key, recorded, seconds)
        return replies

    async def _keep_claim(self, records: Records, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.settings.claim_seconds / 3)
            self._quietly(records.extend, key, token, self.settings.claim_seconds)

    def _claimed_before(self, records: Records, key: str) -> bool:
        try:
            return records.claimed_before(key, self.settings.expiry_hours * 3600)
        except REDIS_ERRORS as error:  # the turn then runs; Redis down, it cannot have been stored there
            OUTAGE.failed(WHERE, error)
            return False

    @staticmethod
    def _quietly(operation: Callable[..., None], *args: Any) -> None:
        """A claim's write that may fail while Redis is down: the claim then expires by itself."""
        try:
            operation(*args)
        except REDIS_ERRORS as error:
            OUTAGE.failed(WHERE, error)

    async def respond(self, sender: str, message_id: str | None, process: Callable[[], Awaitable[Replies]],
                      tracker_store: TrackerStore | None = None) -> HTTPResponse:
        """A channel's answer: the replies, processed once per id; without an id, processed as always."""
        if message_id is None:
            return response.json(await process())

        async def stored() -> Replies | None:
            tracker = await tracker_store.retrieve(sender) if tracker_store is not None else None
            return replies_of_turn(tracker, message_id) if tracker is not None else None

        try:
            return response.json(await self.once(sender, message_id, process, stored))
        except StillProcessing:
            return response.json({"error": "this message_id is still being processed: send it again shortly"},
                                 status=503, headers={"Retry-After": "1"})
        except Exception:
            logger.exception("Message %s from %s was not processed", message_id, sender)
            return response.json({"error": "the message was not processed: send it again with the same message_id"},
                                 status=503)


def replies_of_turn(tracker: DialogueStateTracker, message_id: str) -> Replies | None:
    """The bot's messages after the customer's message `message_id`, as a channel collects them;
    None when the conversation does not hold that message."""
    replies: Replies | None = None
    for event in tracker.events:
        if isinstance(event, UserUttered):
            if replies is not None:
                break
            if event.message_id == message_id:
                replies = []
        elif isinstance(event, BotUttered) and replies is not None:
            message = {name: value for name, value in event.message().items()
                       if value and name in COLLECTED_FIELDS}
            replies.append({"recipient_id": tracker.sender_id, **message})
    return replies


def _first_found(stored: Callable[[], Awaitable[Replies | None]],
                 process: Callable[[], Awaitable[Replies]]) -> Callable[[], Awaitable[Replies]]:
    async def stored_or_processed() -> Replies:
        replies = await stored()
        if replies is not None:
            logger.info("A retried message was already in its conversation: answered with its stored replies")
            return replies
        return await process()

    return stored_or_processed
