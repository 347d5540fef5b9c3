"""The load test's audit tells a whole conversation from one that lost, doubled or reordered a message."""

from __future__ import annotations

from typing import Any

from deploy.load_client import Exchange, audit_conversation


def exchanges(count: int) -> list[Exchange]:
    return [Exchange("alice", f"id-{n}", f"message {n}", status=200) for n in range(count)]


def turn(message_id: str, answered: bool = True) -> list[dict[str, Any]]:
    return [{"event": "user", "message_id": message_id}, *([{"event": "bot", "text": "ok"}] if answered else [])]


def test_a_whole_conversation_passes() -> None:
    sent = exchanges(3)
    events = [{"event": "action", "name": "action_session_start"}, *turn("id-0"), *turn("id-1"), *turn("id-2")]
    checked = audit_conversation("alice", sent, events)
    assert (checked.stored, checked.lost, checked.duplicated, checked.out_of_order, checked.unanswered) == (
        3, 0, 0, False, 0)


def test_a_lost_a_doubled_a_reordered_and_an_unanswered_message_are_each_counted() -> None:
    sent = exchanges(4)
    events = [*turn("id-0"), *turn("id-2"), *turn("id-1", answered=False), *turn("id-1")]  # id-3 never stored
    checked = audit_conversation("alice", sent, events)
    assert (checked.lost, checked.duplicated, checked.out_of_order, checked.unanswered) == (1, 1, True, 1)


def test_a_message_the_customer_never_got_an_answer_to_is_not_counted_lost() -> None:
    sent = exchanges(2)
    sent[1].status = 503
    checked = audit_conversation("alice", sent, turn("id-0"))
    assert (checked.acknowledged, checked.lost) == (1, 0)
