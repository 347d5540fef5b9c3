"""The per-sender rate limiter behind the guards: in process without Redis, and shared through
Redis by every server process when REDIS_URL is set."""

from __future__ import annotations

import uuid

import pytest

from components.channels.guards import RateLimiter
from tests.conftest import RedisServer


def test_without_redis_each_sender_has_its_own_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    limiter = RateLimiter(per_minute=3)
    assert [limiter.allow("ann") for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("bob")


def test_with_redis_two_server_processes_share_the_count(redis_server: RedisServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    first, second = RateLimiter(per_minute=4), RateLimiter(per_minute=4)
    sender = f"shared-{uuid.uuid4().hex}"
    assert [first.allow(sender), second.allow(sender), first.allow(sender), second.allow(sender)] == [True] * 4
    assert not first.allow(sender) and not second.allow(sender)
    assert any(key.startswith(f"kefu:rate:{{{sender}}}".encode()) for key in redis_server.client().scan_iter())
