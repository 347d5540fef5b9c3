"""The served bot over HTTP: API authentication, the guards on every route, the web chat's
endpoints, Slack's signature check, and fuzzed input that must never cause a 5xx."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

from tests.channels.conftest import API_TOKEN, MESSAGES_PER_WINDOW, SLACK_SECRET, WINDOW_SECONDS
from tests.conftest import PROJECT, RasaServer


def http(bot: RasaServer, path: str, body: bytes | None = None, headers: dict | None = None,
         method: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(bot.url + path, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def post_json(bot: RasaServer, path: str, payload: object) -> tuple[int, object]:
    status, body = http(bot, path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    return status, json.loads(body) if body else None


def user_texts(bot: RasaServer, sender: str) -> list[str]:
    status, body = http(bot, f"/conversations/{sender}/tracker?token={API_TOKEN}")
    assert status == 200
    return [e["text"] for e in json.loads(body)["events"] if e["event"] == "user"]


def test_the_api_needs_the_token_and_the_chat_endpoints_stay_public(web_bot: RasaServer) -> None:
    assert http(web_bot, "/status")[0] == 401
    assert http(web_bot, "/status?token=wrong")[0] == 401
    assert http(web_bot, f"/status?token={API_TOKEN}")[0] == 200
    status, page = http(web_bot, "/webhooks/webchat/")
    assert status == 200 and b"<title>Kefu" in page and b"http" not in page.split(b"<body>")[0].replace(
        b"http-equiv", b"")  # no asset from another origin
    assert post_json(web_bot, "/webhooks/rest/webhook", {"sender": "public", "message": "hi"})[0] == 200
    assert post_json(web_bot, "/webhooks/webchat/webhook", {"sender": "public", "message": "hi"})[0] == 200


def test_make_serve_refuses_to_start_the_api_without_a_secret() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("KEFU_API_TOKEN", "KEFU_JWT_SECRET")}
    completed = subprocess.run(["make", "serve"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    assert completed.returncode != 0 and "KEFU_JWT_SECRET" in completed.stdout


def test_an_oversized_message_is_refused_politely_and_not_processed(web_bot: RasaServer) -> None:
    sender = f"big-{uuid.uuid4().hex}"
    for path in ("/webhooks/rest/webhook", "/webhooks/webchat/webhook"):
        status, replies = post_json(web_bot, path, {"sender": sender, "message": "x" * 2001})
        assert status == 200 and "too long" in replies[0]["text"]
    status, replies = post_json(web_bot, "/webhooks/rest/webhook", {"sender": sender, "message": "退" * 2001})
    assert status == 200 and "这条消息太长了（2001个字符，上限为2000个）" in replies[0]["text"]
    status, body = post_json(web_bot, f"/conversations/{sender}/messages?token={API_TOKEN}",
                             {"text": "y" * 5000, "sender": "user"})
    assert status == 413
    assert not any(text.startswith(("x", "y", "退")) for text in user_texts(web_bot, sender))


def test_the_rate_limit_slows_a_sender_down_and_then_lets_them_talk_again(web_bot: RasaServer) -> None:
    sender = f"fast-{uuid.uuid4().hex}"
    time.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS + 0.05)  # start at a window's beginning
    statuses = [post_json(web_bot, "/webhooks/rest/webhook", {"sender": sender, "message": "/greet"})
                for _ in range(MESSAGES_PER_WINDOW + 2)]
    texts = [" ".join(r["text"] for r in replies) for _, replies in statuses]
    assert all(status == 200 for status, _ in statuses)
    assert not any("quickly" in t for t in texts[:MESSAGES_PER_WINDOW]) and "quickly" in texts[-1], texts
    time.sleep(WINDOW_SECONDS - time.time() % WINDOW_SECONDS + 0.05)
    _, replies = post_json(web_bot, "/webhooks/rest/webhook", {"sender": sender, "message": "/greet"})
    assert replies and not any("quickly" in r["text"] for r in replies)


def test_control_characters_are_stripped_before_nlu(web_bot: RasaServer) -> None:
    sender = f"ctrl-{uuid.uuid4().hex}"
    post_json(web_bot, "/webhooks/rest/webhook", {"sender": sender, "message": "hel\x00lo\x07 there\x1b"})
    assert user_texts(web_bot, sender) == ["hello there"]


def test_malformed_bodies_get_a_4xx_on_every_endpoint(web_bot: RasaServer) -> None:
    paths = ["/webhooks/rest/webhook", "/webhooks/webchat/webhook", f"/conversations/m/messages?token={API_TOKEN}"]
    bodies = [b"[1, 2, 3]", b"{not json", b"\xff\xfe\xfa", b'{"sender": "s", "message": 42}']
    for path in paths:
        for body in bodies:
            status, _ = http(web_bot, path, body, {"Content-Type": "application/json"})
            assert 400 <= status < 500, (path, body, status)


def fuzzed_payloads(count: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    payloads: list[bytes] = []
    for n in range(count):
        kind = n % 8
        if kind == 0:
            payloads.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))))
        elif kind == 1:
            depth = rng.randrange(50, 5000)
            payloads.append(b'{"sender": "f", "message": ' + b"[" * depth + b"]" * depth + b"}")
        elif kind == 2:
            payloads.append(json.dumps({"sender": f"fuzz{n}", "message": "a" * 1_000_000}).encode())
        elif kind == 3:
            payloads.append(json.dumps({"sender": f"fuzz{n}", "message": "\x00" * rng.randrange(1, 3000)}).encode())
        elif kind == 4:
            payloads.append(json.dumps({"sender": None, "message": {"nested": [1, {"x": None}]}}).encode())
        elif kind == 5:
            payloads.append(json.dumps([{"sender": "f", "message": "hi"}] * rng.randrange(1, 50)).encode())
        elif kind == 6:
            payloads.append(b'{"sender": "f", "message": "' + bytes([rng.randrange(128, 256)]) * 20 + b'"}')
        else:
            payloads.append(json.dumps({"sender": f"fuzz{n}", "message": "\ud800".encode("utf-8", "surrogatepass")
                                        .decode("latin-1") + "🦄" * rng.randrange(1, 600)}).encode())
    return payloads


def test_fuzzed_payloads_never_cause_a_server_error(web_bot: RasaServer) -> None:
    paths = ["/webhooks/rest/webhook", "/webhooks/webchat/webhook", f"/conversations/fz/messages?token={API_TOKEN}",
             "/webhooks/slack/webhook"]
    failures = []
    for number, payload in enumerate(fuzzed_payloads(200)):
        path = paths[number % len(paths)]
        status, _ = http(web_bot, path, payload, {"Content-Type": "application/json"})
        if status >= 500:
            failures.append((path, payload[:80], status))
    assert not failures


def slack_request(body: dict, secret: str, timestamp: int) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Slack-Request-Timestamp": str(timestamp),
                 "X-Slack-Signature": signature}


def test_slack_accepts_a_signed_event_and_rejects_unsigned_or_stale_ones(web_bot: RasaServer) -> None:
    challenge = {"type": "url_verification", "challenge": "kefu-challenge-123", "token": "x"}
    raw, headers = slack_request(challenge, SLACK_SECRET, int(time.time()))
    status, body = http(web_bot, "/webhooks/slack/webhook", raw, headers)
    assert status == 200 and b"kefu-challenge-123" in body
    unsigned = http(web_bot, "/webhooks/slack/webhook", raw, {"Content-Type": "application/json"})
    raw, headers = slack_request(challenge, SLACK_SECRET, int(time.time()) - 600)
    stale = http(web_bot, "/webhooks/slack/webhook", raw, headers)
    raw, headers = slack_request(challenge, "another-secret", int(time.time()))
    forged = http(web_bot, "/webhooks/slack/webhook", raw, headers)
    for status, _ in (unsigned, stale, forged):
        assert 400 <= status < 500


def test_slack_is_off_without_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from components.channels.slack import DisabledSlackInput, SlackInput

    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-only-a-token")
    assert isinstance(SlackInput.from_credentials({"use_threads": False}), DisabledSlackInput)


def test_the_web_chat_marks_generated_replies_and_keeps_the_history(web_bot: RasaServer) -> None:
    sender = f"web-{uuid.uuid4().hex}"
    _, replies = post_json(web_bot, "/webhooks/webchat/webhook",
                           {"sender": sender, "message": "I need to switch my account to a new email"})
    assert any(r.get("reply_id") for r in replies), replies
    assert not any(r.get("buttons") for r in replies)  # the page draws 👍/👎 itself
    status, history = http(web_bot, f"/webhooks/webchat/history?sender={sender}")
    messages = json.loads(history)
    assert messages[0] == {"from": "user", "text": "I need to switch my account to a new email"}
    assert {"from": "bot", "text": next(r["text"] for r in replies if r.get("reply_id"))} in messages


def test_browsers_on_other_origins_get_no_cors_permission_by_default(web_bot: RasaServer) -> None:
    request = urllib.request.Request(f"{web_bot.url}/webhooks/webchat/history?sender=x",
                                     headers={"Origin": "https://evil.example"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers.get("Access-Control-Allow-Origin") is None
