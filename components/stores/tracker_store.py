"""Kefu's tracker store: conversations as append-only event lists in Redis.

Rasa's stock `RedisTrackerStore` rewrites a whole conversation on every turn (GET, decode,
replay, merge, SET) and lists keys with `KEYS`. This store appends only a turn's new events
(`RPUSH`) and keeps, per conversation, a hash with an event counter, the index of the last
session start and the index of the list's first event (after the optional cap), all
updated by one Lua script, so an append is atomic and conditional on the counter it expects.

    {prefix}:tracker:{<conversation id>}:events   list of JSON events (Rasa's `as_dict`)
    {prefix}:tracker:{<conversation id>}:meta     hash: count, session, head

A retrieve reads the counter and the last session's events in one round trip. Trackers
this process read or wrote stay in a small in-process cache; while the counter in Redis
still matches, a retrieve returns the cached tracker instead of replaying its events.

With `REDIS_URL` unset the class builds a `SQLiteTrackerStore` instead, Rasa's SQL store on a
SQLite file (`db`, default `.kefu/sessions.db`) that also masks PII, so the bot needs no
server. While Redis is unreachable nothing is raised into Rasa: writes go to a local spool
(`components.stores.spool`) and are replayed in order when Redis is back, and `OUTAGE`
tells the outage policy to answer "temporarily unavailable".

With `KEFU_ENCRYPTION_KEY` set (`components.stores.encryption`) both stores write each event
sealed, one token per event, so a turn encrypts only its own new events. A sealed event keeps
its type, timestamp and, for an action, its name readable: the stores find sessions and
compare events with them without the key. Events written before encryption was on read as
they are. A store keeps a key check, a token written when encryption is first on, and refuses
to start when its keys do not open it.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, Event
from rasa.shared.core.trackers import DialogueStateTracker

from components.stores.connection import OUTAGE, REDIS_ERRORS, connect, describe, redis_url
from components.stores.encryption import Cipher
from components.stores.spool import Spool
from components.text import PiiMasker

logger = logging.getLogger(__name__)

DEFAULT_SQLITE_FILE = ".kefu/sessions.db"
DEFAULT_SPOOL_FOLDER = ".kefu/spool"
ENCRYPTED = "encrypted"  # the sealed event's field holding the token
KEY_CHECK_TABLE = "kefu_encryption_check"  # in the SQLite file; in Redis the key {prefix}:tracker:encryption-check

# KEYS: meta, events. ARGV: expected count (-1: any), TTL in ms (0: none), cap (0: none),
# index of the last session start among the new events (-1: none), then the events.
APPEND_SCRIPT = """
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
local expected = tonumber(ARGV[1])
if expected >= 0 and count ~= expected then return {0, count} end
local added = #ARGV - 4
for first = 5, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
count = count + added
redis.call('HSET', KEYS[1], 'count', count)
local session = tonumber(ARGV[4])
if session >= 0 then redis.call('HSET', KEYS[1], 'session', count - added + session) end
local cap = tonumber(ARGV[3])
if cap > 0 then
  local length = redis.call('LLEN', KEYS[2])
  if length > cap then
    redis.call('LTRIM', KEYS[2], length - cap, -1)
    redis.call('HINCRBY', KEYS[1], 'head', length - cap)
  end
end
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return {1, count}
"""

# KEYS: meta, events. ARGV: the count the caller has cached (-1: none), 'session' or 'all'.
# Returns {count, session, head} when the cache is current, else also the events.
READ_SCRIPT = """
local meta = redis.call('HMGET', KEYS[1], 'count', 'session', 'head')
local count = tonumber(meta[1] or '0')
local session = tonumber(meta[2] or '0')
local head = tonumber(meta[3] or '0')
if count == tonumber(ARGV[1]) then return {count, session, head} end
local first = 0
if ARGV[2] == 'session' then first = math.max(session - head, 0) end
return {count, session, head, redis.call('LRANGE', KEYS[2], first, -1)}
"""

# KEYS: events. ARGV: index, stored event, new event, ... Replaces each event that is still the
# one read; returns how many were not (the list was trimmed or deleted since).
REENCRYPT_SCRIPT = """
local missed = 0
for i = 1, #ARGV, 3 do
  if redis.call('LINDEX', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('LSET', KEYS[1], ARGV[i], ARGV[i + 2])
  else
    missed = missed + 1
  end
end
return missed
"""


@dataclass
class _Known:
    """A tracker this process read or wrote: its events are stored events `offset` onwards,
    up to `count`. `current` is False for what was kept during an outage."""

    tracker: DialogueStateTracker
    count: int
    offset: int
    current: bool = True

    def unchanged(self) -> bool:
        """Whether the tracker has no events beyond those read or saved (Rasa may have added
        some and then failed before saving)."""
        return len(self.tracker.events) == self.count - self.offset


def _event_key(event: dict[str, Any]) -> tuple[str, float]:
    return event.get("event", ""), event.get("timestamp", 0.0)


def _last_session_start(events: list[dict[str, Any]]) -> int:
    """Where the last session begins: its `action_session_start`, as Rasa's stores split sessions."""
    return max((i for i, e in enumerate(events)
                if e.get("event") == ActionExecuted.type_name and e.get("name") == ACTION_SESSION_START_NAME),
               default=-1)


def masked_event(data: dict[str, Any], masker: PiiMasker) -> dict[str, Any]:
    """A copy of a serialised event with user and bot texts, entity values and slot values masked."""
    data = json.loads(json.dumps(data))  # a deep copy: the tracker's own events stay as they are
    if isinstance(data.get("text"), str):
        data["text"] = masker.mask(data["text"])
    parse_data = data.get("parse_data") or {}
    if isinstance(parse_data.get("text"), str):
        parse_data["text"] = masker.mask(parse_data["text"])
    for entity in [*(parse_data.get("entities") or []), *(data.get("entities") or [])]:
        if isinstance(entity, dict) and isinstance(entity.get("value"), str):
            entity["value"] = masker.mask(entity["value"])
    if data.get("event") == "slot" and isinstance(data.get("value"), str):
        data["value"] = masker.mask(data["value"])
    return data


def stored_event(data: dict[str, Any], masker: PiiMasker | None, cipher: Cipher) -> dict[str, Any]:
    """What a store writes for a serialised event: PII-masked when asked, sealed when a key is set."""
    if masker is not None:
        data = masked_event(data, masker)
    if not cipher.enabled:
        return data
    sealed = {"event": data.get("event"), "timestamp": data.get("timestamp")}
    if data.get("event") == ActionExecuted.type_name:
        sealed["name"] = data.get("name")  # an action name, never customer text: sessions are found by it
    sealed[ENCRYPTED] = cipher.encrypt(json.dumps(data, ensure_ascii=False))
    return sealed


def opened_event(stored: dict[str, Any], cipher: Cipher, where: str) -> dict[str, Any]:
    """The event a store wrote: a sealed one decrypted, one written without a key as it is."""
    if ENCRYPTED not in stored:
        return stored
    return json.loads(cipher.decrypt(stored[ENCRYPTED], where))


def reencrypted_event(stored: str, cipher: Cipher, where: str) -> str | None:
    """A stored event sealed under the newest key, or None when it already is."""
    data = json.loads(stored)
    if ENCRYPTED not in data:  # written before encryption was on
        return json.dumps(stored_event(data, None, cipher), ensure_ascii=False)
    token = cipher.reencrypt(data[ENCRYPTED], where)
    return None if token is None else json.dumps({**data, ENCRYPTED: token}, ensure_ascii=False)


class SQLiteTrackerStore(SQLTrackerStore):
    """Rasa's SQL tracker store on a SQLite file, writing PII-masked or encrypted events when asked to."""

    def __init__(self, domain: Domain | None, db: str, event_broker: EventBroker | None = None,
                 mask_pii: bool = False, cipher: Cipher | None = None) -> None:
        Path(db).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(domain, dialect="sqlite", db=db, event_broker=event_broker)
        self.db_file = db
        self.masker = PiiMasker() if mask_pii else None
        self.cipher = cipher or Cipher.from_environment()
        with self.engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {KEY_CHECK_TABLE} (value TEXT NOT NULL)")
            stored = connection.exec_driver_sql(f"SELECT value FROM {KEY_CHECK_TABLE}").scalar()
            new = self.cipher.check(stored, f"the SQLite tracker store {db}")
            if new is not None:
                connection.exec_driver_sql(f"INSERT INTO {KEY_CHECK_TABLE} (value) VALUES (?)", (new,))

    async def save(self, tracker: DialogueStateTracker) -> None:
        if self.masker is None and not self.cipher.enabled:
            await super().save(tracker)
            return
        await self.stream_events(tracker)
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                intent = (data.get("parse_data") or {}).get("intent", {}).get("name")
                session.add(self.SQLEvent(sender_id=tracker.sender_id, type_name=event.type_name,
                                          timestamp=data.get("timestamp"), intent_name=intent,
                                          action_name=data.get("name"),
                                          data=json.dumps(stored_event(data, self.masker, self.cipher))))
            session.commit()

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> DialogueStateTracker | None:
        """Rasa's, reading sealed events too."""
        where = f"the SQLite tracker store {self.db_file}, conversation {sender_id!r}"
        with self.session_scope() as session:
            rows = self._event_query(session, sender_id, fetch_events_from_all_sessions).all()
            events = [opened_event(json.loads(row.data), self.cipher, where) for row in rows]
        if not events or self.domain is None:
            return None
        return DialogueStateTracker.from_dict(sender_id, events, self.domain.slots)

    def reencrypt(self, batch: int = 500) -> int:
        """Seals every stored event under the newest key, a batch per transaction; returns how
        many were rewritten. Run again after an interruption, it skips what it had done."""
        rewritten, last_id = 0, 0
        while True:
            with self.session_scope() as session:
                rows = (session.query(self.SQLEvent.id, self.SQLEvent.data).filter(self.SQLEvent.id > last_id)
                        .order_by(self.SQLEvent.id).limit(batch).all())
                if not rows:
                    break
                for row_id, data in rows:
                    new = reencrypted_event(data, self.cipher, f"the SQLite tracker store {self.db_file}, row {row_id}")
                    if new is not None:
                        # only if unchanged since read: `kefu forget` may have run meanwhile
                        rewritten += (session.query(self.SQLEvent)
                                      .filter(self.SQLEvent.id == row_id, self.SQLEvent.data == data)
                                      .update({"data": new}, synchronize_session=False))
                session.commit()
                last_id = rows[-1][0]
        with self.engine.begin() as connection:
            stored = connection.exec_driver_sql(f"SELECT value FROM {KEY_CHECK_TABLE}").scalar()  # written at start
            if stored is not None:
                new = self.cipher.reencrypt(stored, f"the SQLite tracker store {self.db_file} (its key check)")
                if new is not None:
                    connection.exec_driver_sql(f"UPDATE {KEY_CHECK_TABLE} SET value = ?", (new,))
        # rebuilds the file, so its free pages lose the old values too (also after an interrupted run)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM")
        return rewritten


class RedisTrackerStore(TrackerStore):
    """See the module docstring. Configured in endpoints.yml:

        tracker_store:
          type: components.stores.RedisTrackerStore
          key_prefix: kefu          # keys start with `kefu:tracker:`
          record_exp: 2592000       # sliding expiry in seconds, renewed on every write (none when unset)
          max_events: null          # keep at most this many events per conversation
          mask_pii: false           # store user texts, entities and slots PII-masked
          socket_timeout: 2         # seconds per Redis command
          connect_timeout: 2        # seconds to connect
          ssl_ca_certs: null        # for rediss:// URLs (also ssl_certfile, ssl_keyfile)
          spool_dir: .kefu/spool    # writes made while Redis is down
          cache_size: 1000          # conversations kept in process
          db: .kefu/sessions.db     # the SQLite file used when REDIS_URL is unset
    """

    def __new__(cls, domain: Domain | None = None, event_broker: EventBroker | None = None,
                **kwargs: Any) -> TrackerStore:
        if kwargs.get("url") or redis_url():
            return super().__new__(cls)
        sqlite_file = str(kwargs.get("db") or DEFAULT_SQLITE_FILE)
        logger.info("REDIS_URL is not set: conversations are kept in %s", sqlite_file)
        return SQLiteTrackerStore(domain, sqlite_file, event_broker, mask_pii=bool(kwargs.get("mask_pii")),
                                  cipher=kwargs.get("cipher"))

    def __init__(self, domain: Domain | None = None, event_broker: EventBroker | None = None, *,
                 url: str | None = None, key_prefix: str = "kefu", record_exp: float | None = None,
                 max_events: int | None = None, mask_pii: bool = False, socket_timeout: float = 2.0,
                 connect_timeout: float = 2.0, spool_dir: str = DEFAULT_SPOOL_FOLDER, cache_size: int = 1000,
                 ssl_ca_certs: str | None = None, ssl_certfile: str | None = None, ssl_keyfile: str | None = None,
                 cipher: Cipher | None = None, **kwargs: Any) -> None:
        super().__init__(domain, event_broker)
        url = url or redis_url() or ""
        self.where = describe(url)
        self.red = connect(url, socket_timeout, connect_timeout, ssl_ca_certs=ssl_ca_certs,
                           ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
        self.prefix = f"{key_prefix}:tracker:"
        self.record_exp_ms = int(float(record_exp) * 1000) if record_exp else 0
        self.max_events = int(max_events or 0)
        self.masker = PiiMasker() if mask_pii else None
        self.cipher = cipher or Cipher.from_environment()  # KEFU_ENCRYPTION_KEY; tests and benchmarks pass one
        self.spool = Spool(spool_dir, f"{key_prefix}-tracker")
        self.cache_size = int(cache_size)
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._append = self.red.register_script(APPEND_SCRIPT)
        self._read = self.red.register_script(READ_SCRIPT)
        self._reencrypt = self.red.register_script(REENCRYPT_SCRIPT)
        self.key_check = f"{self.prefix}encryption-check"
        self._key_checked = False
        try:
            self._check_key()
        except REDIS_ERRORS as error:  # checked when Redis is back, before anything is read
            OUTAGE.failed(self.where, error)
        ignored = set(kwargs) - {"host", "db"}
        if ignored:
            logger.warning("RedisTrackerStore ignores unknown settings: %s", ", ".join(sorted(ignored)))

    # keys

    def _keys(self, sender_id: str) -> list[str]:
        return [f"{self.prefix}{{{sender_id}}}:meta", f"{self.prefix}{{{sender_id}}}:events"]

    # serialisation

    def _serialise(self, event: Event) -> str:
        return json.dumps(stored_event(event.as_dict(), self.masker, self.cipher), ensure_ascii=False)

    def _tracker(self, sender_id: str, events: list[bytes | str]) -> DialogueStateTracker:
        where = f"the Redis tracker store at {self.where}, conversation {sender_id!r}"
        return DialogueStateTracker.from_dict(sender_id, [opened_event(json.loads(e), self.cipher, where)
                                                          for e in events], self.domain.slots)

    def _check_key(self) -> None:
        where = f"the Redis tracker store at {self.where}"
        new = self.cipher.check(self._stored_key_check(), where)
        if new is not None and not self.red.set(self.key_check, new, nx=True):
            self.cipher.check(self._stored_key_check(), where)  # another server wrote one first
        self._key_checked = True

    def _stored_key_check(self) -> str | None:
        value = self.red.get(self.key_check)
        return value.decode("utf-8") if value is not None else None

    # Redis calls: never raise into Rasa

    def _redis_ready(self) -> bool:
        """Whether to talk to Redis now; replays the spool first when Redis is back."""
        if not OUTAGE.should_try():
            return False
        try:
            if not self._key_checked:
                self._check_key()
            if self.spool.pending():
                self.red.ping()
                self.spool.replay(self._replay)
                self._known.clear()  # what was kept during the outage is not what Redis holds
        except REDIS_ERRORS as error:
            OUTAGE.failed(self.where, error)
            return False
        return True

    def _replay(self, record: dict[str, Any]) -> None:
        events = record["events"]
        if record.get("whole"):
            events = self._unstored(record["sender_id"], events)
        self._append(keys=self._keys(record["sender_id"]),
                     args=[-1, self.record_exp_ms, self.max_events, _last_session_start(events),
                           *(json.dumps(e, ensure_ascii=False) for e in events)])

    def _unstored(self, sender_id: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The events of `events` not in the conversation's last stored session."""
        reply = self._read(keys=self._keys(sender_id), args=[-1, "session"])
        stored = {_event_key(json.loads(e)) for e in reply[3]}
        return [e for e in events if _event_key(e) not in stored]

    # the TrackerStore interface

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The conversation's last session."""
        known = self._known.get(sender_id)
        if not self._redis_ready():
            return self._while_down(sender_id, known)
        cached = known.count if known and known.current and known.unchanged() else -1
        try:
            reply = self._read(keys=self._keys(sender_id), args=[cached, "session"])
        except REDIS_ERRORS as error:
            OUTAGE.failed(self.where, error)
            return self._while_down(sender_id, known)
        OUTAGE.recovered(self.where)
        count, session, head = (int(v) for v in reply[:3])
        if count == 0:
            return None
        offset = max(session, head)
        if len(reply) == 3:
            if known is not None and known.offset == offset:
                self._known.move_to_end(sender_id)
                return known.tracker
            # current, but a new session began since: read the last session's events
            reply = self._read(keys=self._keys(sender_id), args=[-1, "session"])
        tracker = self._tracker(sender_id, reply[3])
        self._remember(sender_id, _Known(tracker, count, offset))
        return tracker

    async def retrieve_full_tracker(self, conversation_id: str) -> DialogueStateTracker | None:
        """Every stored event of the conversation, across sessions."""
        if self._redis_ready():
            try:
                reply = self._read(keys=self._keys(conversation_id), args=[-1, "all"])
                OUTAGE.recovered(self.where)
                return self._tracker(conversation_id, reply[3]) if int(reply[0]) else None
            except REDIS_ERRORS as error:
                OUTAGE.failed(self.where, error)
        return await self.retrieve(conversation_id)

    def _while_down(self, sender_id: str, known: _Known | None) -> DialogueStateTracker:
        """What this process knows of the conversation, or a stand-in that starts listening.

        Returning None would make Rasa start a new session, which would split the
        conversation once the spool is replayed. The stand-in's first event is not stored."""
        if known is not None and known.unchanged():
            return known.tracker
        tracker = self.init_tracker(sender_id)
        tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
        self._remember(sender_id, _Known(tracker, count=1, offset=0, current=False))
        return tracker

    def _remember(self, sender_id: str, known: _Known) -> None:
        if known.tracker.events.maxlen is not None:  # a capped history cannot be compared by length
            return
        self._known[sender_id] = known
        self._known.move_to_end(sender_id)
        while len(self._known) > self.cache_size:
            self._known.popitem(last=False)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Appends the events added since the tracker was read (or last saved)."""
        sender_id = tracker.sender_id
        known = self._known.get(sender_id)
        events = list(tracker.events)
        if known is not None and known.tracker is tracker and len(events) >= known.count - known.offset:
            new, expected = events[known.count - known.offset:], known.count
        else:
            new, expected = events, None  # not a tracker this store handed out: compare with what is stored
        if not new:
            return
        serialised = [self._serialise(e) for e in new]
        if self._redis_ready():
            try:
                count = self._write(sender_id, serialised, expected)
                OUTAGE.recovered(self.where)
                self._remember(sender_id, _Known(tracker, count, count - len(events)))
                self._publish(sender_id, new)
                return
            except REDIS_ERRORS as error:
                OUTAGE.failed(self.where, error)
        self.spool.append({"sender_id": sender_id, "events": [json.loads(e) for e in serialised],
                           "whole": expected is None})
        offset = known.offset if known is not None and expected is not None else 0
        self._remember(sender_id, _Known(tracker, offset + len(events), offset, current=False))
        self._publish(sender_id, new)

    def _write(self, sender_id: str, serialised: list[str], expected: int | None) -> int:
        """Appends `serialised` if Redis holds `expected` events; else appends what it lacks."""
        session = _last_session_start([json.loads(e) for e in serialised])
        if expected is not None:
            done, count = self._append(keys=self._keys(sender_id),
                                       args=[expected, self.record_exp_ms, self.max_events, session, *serialised])
            if done:
                return int(count)
            logger.warning("Conversation %s changed in Redis since this process read it (is the lock store "
                           "shared by all servers?); appending only the events Redis lacks", sender_id)
        missing = self._unstored(sender_id, [json.loads(e) for e in serialised])
        missing_json = [json.dumps(e, ensure_ascii=False) for e in missing]
        _, count = self._append(keys=self._keys(sender_id),
                                args=[-1, self.record_exp_ms, self.max_events, _last_session_start(missing),
                                      *missing_json])
        return int(count)

    def _publish(self, sender_id: str, events: list[Event]) -> None:
        """Rasa's `stream_events` diffs against `retrieve`, which here returns the same object."""
        if self.event_broker is not None:
            for event in events:
                self.event_broker.publish({"sender_id": sender_id, **event.as_dict()})

    async def keys(self) -> Iterable[str]:
        """Conversation ids, found with SCAN (never KEYS)."""
        start, end = len(self.prefix) + 1, -len("}:meta")
        try:
            found = [key.decode()[start:end] for key in self.red.scan_iter(match=f"{self.prefix}{{*}}:meta",
                                                                           count=1000)]
            OUTAGE.recovered(self.where)
            return found
        except REDIS_ERRORS as error:
            OUTAGE.failed(self.where, error)
            return list(self._known)

    def reencrypt(self) -> int:
        """Seals every stored event under the newest key; returns how many were rewritten. Run
        again after an interruption, it skips what it had done."""
        self._redis_ready()  # spooled writes go in first, so they are re-encrypted too
        stored = self._stored_key_check()  # written when this store started, with a key
        if stored is not None:
            new = self.cipher.reencrypt(stored, f"the Redis tracker store at {self.where} (its key check)")
            if new is not None:
                self.red.set(self.key_check, new)
        rewritten = 0
        for key in self.red.scan_iter(match=f"{self.prefix}{{*}}:events", count=1000):
            where = f"the Redis tracker store at {self.where}, key {key.decode()}"
            for _ in range(10):  # a list trimmed by a live server meanwhile is read again
                changes: list[Any] = []
                for index, stored in enumerate(self.red.lrange(key, 0, -1)):
                    new = reencrypted_event(stored.decode("utf-8"), self.cipher, where)
                    if new is not None:
                        changes += [index, stored, new]
                missed = int(self._reencrypt(keys=[key], args=changes)) if changes else 0
                rewritten += len(changes) // 3 - missed
                if not missed:
                    break
            else:
                raise RuntimeError(f"{where} kept changing during the rotation; run `kefu rotate-key` again")
        return rewritten

    def delete(self, sender_id: str) -> int:
        """Removes a conversation (right to erasure); returns how many keys went. Raises on outage."""
        self._known.pop(sender_id, None)
        return int(self.red.delete(*self._keys(sender_id)))
