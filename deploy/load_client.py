"""Customers' conversations through the REST channel, as the load test and the fault tests send them.

Each conversation sends its messages one at a time, each with its own `message_id`, and
sends a message again with the same id after a 5xx, a timeout or a broken connection, as
the chat page does (at-least-once delivery; the server processes each id once). `audit`
then compares what the customers had acknowledged with what the tracker store holds:
messages lost, processed twice, stored out of order, or stored without a reply.

    result = asyncio.run(run_conversations(f"{url}/webhooks/rest/webhook", {"alice": ["hi", "bye"]}))
    audits = audit(result, asyncio.run(stored_events(redis_url, result.senders)))
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

DOMAIN = Path(__file__).resolve().parent.parent / "domain.yml"


@dataclass
class LoadSettings:
    request_timeout: float = 130.0  # seconds per send: haproxy waits 120 s for a replica's answer
    retries: int = 6  # sends of one message after the first
    retry_pause: float = 1.0  # seconds before the first retry, doubled each time up to 8
    deadline: float = 900.0  # seconds for the whole run; conversations not done by then stop
    start_spread: float = 2.0  # seconds over which the conversations start, so they do not all arrive at once
    think_seconds: float = 0.0  # a customer's pause between an answer and their next message


@dataclass
class Exchange:
    """One customer message as the customer lived it: every send until an answer, or giving up."""

    sender: str
    message_id: str
    text: str
    replies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 0  # the last send's HTTP status; 0: no answer at all
    replica: str = ""  # the replica that answered, as haproxy names it (X-Kefu-Replica); "" without haproxy
    answered_at: float = 0.0  # time.monotonic() of the answer
    seconds: float = 0.0  # from the first send to the answer, retries included
    failed_sends: list[str] = field(default_factory=list)  # "502", "503", "timeout", "connection", ...

    @property
    def acknowledged(self) -> bool:
        return self.status == 200

    @property
    def reply_texts(self) -> list[str]:
        return [reply.get("text") or "" for reply in self.replies]


@dataclass
class LoadResult:
    exchanges: list[Exchange]
    seconds: float  # wall time of the whole run
    unsent: int  # messages never sent: the deadline came first

    @property
    def senders(self) -> list[str]:
        return list(dict.fromkeys(exchange.sender for exchange in self.exchanges))

    def failed_sends(self) -> Counter[str]:
        """Every send that did not get an answer, by reason, retried ones included."""
        return Counter(reason for exchange in self.exchanges for reason in exchange.failed_sends)

    def unacknowledged(self) -> list[Exchange]:
        return [exchange for exchange in self.exchanges if not exchange.acknowledged]


async def send_until_answered(session: aiohttp.ClientSession, url: str, exchange: Exchange,
                              settings: LoadSettings) -> None:
    """Sends the message, and again with the same id after a 5xx, timeout or broken connection."""
    body = {"sender": exchange.sender, "message": exchange.text, "message_id": exchange.message_id}
    started = time.perf_counter()
    pause = settings.retry_pause
    for attempt in range(settings.retries + 1):
        if attempt:
            await asyncio.sleep(pause)
            pause = min(2 * pause, 8.0)
        try:
            async with session.post(url, json=body) as response:
                exchange.status = response.status
                if response.status == 200:
                    exchange.replies = await response.json()
                    exchange.replica = response.headers.get("X-Kefu-Replica", "")
                    break
                await response.read()
                exchange.failed_sends.append(str(response.status))
                if response.status < 500:  # the request itself is wrong: sending it again will not help
                    break
        except asyncio.TimeoutError:
            exchange.status = 0
            exchange.failed_sends.append("timeout")
        except aiohttp.ClientError:
            exchange.status = 0
            exchange.failed_sends.append("connection")
    exchange.seconds = time.perf_counter() - started
    exchange.answered_at = time.monotonic()


async def run_conversations(url: str, scripts: Mapping[str, Sequence[str]], settings: LoadSettings | None = None,
                            stop: threading.Event | None = None,
                            exchanges: list[Exchange] | None = None) -> LoadResult:
    """Every conversation of `scripts` (sender: its messages) at once, each one message at a time.

    Once `stop` is set, no conversation sends another message (the rest are not counted as
    unsent). `exchanges`, when given, receives each message as it is sent, for a caller in
    another thread to watch."""
    settings = settings or LoadSettings()
    exchanges = [] if exchanges is None else exchanges
    unsent = 0
    started = time.perf_counter()
    deadline = started + settings.deadline

    async def conversation(session: aiohttp.ClientSession, number: int, sender: str, texts: Sequence[str]) -> None:
        nonlocal unsent
        await asyncio.sleep(settings.start_spread * number / max(1, len(scripts)))
        for sent, text in enumerate(texts):
            if stop is not None and stop.is_set():
                return
            if sent and settings.think_seconds:
                await asyncio.sleep(settings.think_seconds)
            if time.perf_counter() > deadline:
                unsent += len(texts) - sent
                return
            exchange = Exchange(sender, uuid.uuid4().hex, text)
            exchanges.append(exchange)
            await send_until_answered(session, url, exchange, settings)
            if not exchange.acknowledged:  # the customer gives up on this conversation
                unsent += len(texts) - sent - 1
                return

    timeout = aiohttp.ClientTimeout(total=settings.request_timeout)
    connector = aiohttp.TCPConnector(limit=0)  # one connection per conversation, as separate customers have
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        await asyncio.gather(*(conversation(session, number, sender, texts)
                               for number, (sender, texts) in enumerate(scripts.items())))
    return LoadResult(exchanges, time.perf_counter() - started, unsent)


@dataclass
class Audit:
    """One conversation as stored, against what its customer had acknowledged."""

    sender: str
    acknowledged: int  # messages the customer got an answer to
    stored: int  # user messages the store holds with one of the conversation's ids
    lost: int  # acknowledged, not stored
    duplicated: int  # stored more than once
    out_of_order: bool  # stored in another order than sent
    unanswered: int  # stored with no bot reply before the next user message


def audit_conversation(sender: str, exchanges: Sequence[Exchange], events: Sequence[dict[str, Any]]) -> Audit:
    """`events` are the conversation's stored events (Rasa's `as_dict` form), all sessions."""
    sent = [exchange.message_id for exchange in exchanges]
    acknowledged = [exchange.message_id for exchange in exchanges if exchange.acknowledged]
    user_turns = [index for index, event in enumerate(events)
                  if event.get("event") == "user" and event.get("message_id") in sent]
    stored = [events[index]["message_id"] for index in user_turns]
    ends = [*user_turns[1:], len(events)]
    unanswered = sum(1 for start, end in zip(user_turns, ends, strict=True)
                     if not any(event.get("event") == "bot" for event in events[start + 1:end]))
    first_stored = list(dict.fromkeys(stored))
    return Audit(sender=sender, acknowledged=len(acknowledged), stored=len(stored),
                 lost=len(set(acknowledged) - set(stored)),
                 duplicated=len(stored) - len(first_stored),
                 out_of_order=first_stored != [message_id for message_id in sent if message_id in first_stored],
                 unanswered=unanswered)


def audit(result: LoadResult, events: Mapping[str, Sequence[dict[str, Any]]]) -> list[Audit]:
    """Each conversation of `result` against its stored events (`stored_events`)."""
    by_sender: dict[str, list[Exchange]] = {}
    for exchange in result.exchanges:
        by_sender.setdefault(exchange.sender, []).append(exchange)
    return [audit_conversation(sender, exchanges, events.get(sender, []))
            for sender, exchanges in by_sender.items()]


def audit_totals(audits: Sequence[Audit]) -> dict[str, int]:
    return {"conversations": len(audits),
            "acknowledged": sum(a.acknowledged for a in audits),
            "stored": sum(a.stored for a in audits),
            "lost": sum(a.lost for a in audits),
            "duplicated": sum(a.duplicated for a in audits),
            "out_of_order": sum(a.out_of_order for a in audits),
            "unanswered": sum(a.unanswered for a in audits)}


async def stored_events(redis_url: str, senders: Sequence[str], spool_dir: str,
                        key_prefix: str = "kefu") -> dict[str, list[dict[str, Any]]]:
    """Every event of each conversation, read from Redis through Kefu's tracker store.

    `spool_dir` should be an empty folder: a store replays what it finds there into Redis."""
    from rasa.shared.core.domain import Domain

    from components.stores import RedisTrackerStore

    store = RedisTrackerStore(Domain.load(str(DOMAIN)), url=redis_url, key_prefix=key_prefix,
                              spool_dir=spool_dir)
    events: dict[str, list[dict[str, Any]]] = {}
    for sender in senders:
        tracker = await store.retrieve_full_tracker(sender)
        events[sender] = [event.as_dict() for event in tracker.events] if tracker else []
    return events
