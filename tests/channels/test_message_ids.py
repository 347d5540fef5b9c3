"""Client message ids on the REST and web chat channels: a message sent again with the same
`message_id` is processed once and gets the first replies, also when both copies arrive at
once, and with REDIS_URL set also when they reach two servers. The chat page sends an id
with each message and retries a failed one with the same id.

Each channel is served by a real Sanic server, registered the way `rasa run` registers it,
with a stand-in for the trained bot that logs every message it processes in a real tracker
store (no model to train, so these tests take seconds). Redis is a real redis-server."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage, register
from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, UserUttered
from sanic import Sanic
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from components.channels.message_ids import MessageIdSettings, RedisRecords, message_key
from components.channels.rest import RestInput
from components.channels.webchat import WebChatInput
from tests.channels import test_browser
from tests.conftest import RedisServer, free_port

CHANNELS = [RestInput, WebChatInput]
browser = test_browser.browser  # headless Chromium


class CountingBot:
    """Stands in for the trained bot (`app.ctx.agent`): logs each message it processes in a
    tracker and answers with the message's number in the conversation, so a second processing
    shows. Like Rasa's lock store, it takes a conversation's messages one at a time. Each of
    the first `failures` messages raises instead, as a bot whose store is down."""

    domain = None  # the chat page's labels then come from domain.yml

    def __init__(self, seconds_per_message: float = 0.0, failures: int = 0) -> None:
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.seconds_per_message = seconds_per_message
        self.failures = failures
        self.locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def handle_message(self, message: UserMessage) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the tracker store is down")
        async with self.locks[message.sender_id]:
            tracker = await self.tracker_store.get_or_create_tracker(message.sender_id)
            tracker.update(UserUttered(message.text, message_id=message.message_id))
            number = len([e for e in tracker.events if isinstance(e, UserUttered)])
            await asyncio.sleep(self.seconds_per_message)
            reply = f"#{number} {message.text}"
            await message.output_channel.send_text_message(message.sender_id, reply)
            tracker.update(BotUttered(reply))
            await self.tracker_store.save(tracker)

    async def user_messages(self, sender: str) -> list[tuple[str, str]]:
        tracker = await self.tracker_store.retrieve(sender)
        return [(e.text, e.message_id) for e in tracker.events if isinstance(e, UserUttered)] if tracker else []


@asynccontextmanager
async def serving(channel: InputChannel, bot: CountingBot, *others: InputChannel) -> AsyncIterator[Callable[..., Any]]:
    """Serves the channels on a free port; yields `post(body, channel_name) -> (status, json)`,
    by default to the first channel's webhook, whose page is at `post.url`."""
    Sanic.test_mode = True  # Sanic's own switch for starting several apps in one process
    app = Sanic(f"kefu-test-{free_port()}")
    app.ctx.agent = bot
    register([channel, *others], app, route="/webhooks/")
    port = free_port()
    server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    async with aiohttp.ClientSession() as session:

        async def post(body: dict[str, Any], channel_name: str = channel.name()) -> tuple[int, Any]:
            url = f"http://127.0.0.1:{port}/webhooks/{channel_name}/webhook"
            async with session.post(url, data=json.dumps(body), headers={"Content-Type": "application/json"}) as reply:
                return reply.status, await reply.json(content_type=None)

        post.url = f"http://127.0.0.1:{port}/webhooks/{channel.name()}/"  # type: ignore[attr-defined]
        try:
            yield post
        finally:
            await server.before_stop()
            server.close()
            await server.wait_closed()


def texts(replies: list[dict[str, Any]]) -> list[str]:
    return [reply["text"] for reply in replies]


@pytest.fixture
def no_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_repeated_message_id_gets_the_first_replies_and_is_processed_once(channel: type, no_redis: None) -> None:
    async def scenario() -> None:
        bot = CountingBot()
        async with serving(channel(), bot) as post:
            first = await post({"sender": "ann", "message": "where is my order?", "message_id": "m1"})
            again = await post({"sender": "ann", "message": "where is my order?", "message_id": "m1"})
            other = await post({"sender": "ann", "message": "thanks", "message_id": "m2"})
            bob = await post({"sender": "bob", "message": "hi", "message_id": "m1"})  # ids are per sender
        assert first == again == (200, [{"recipient_id": "ann", "text": "#1 where is my order?"}])
        assert texts(other[1]) == ["#2 thanks"] and texts(bob[1]) == ["#1 hi"]
        assert await bot.user_messages("ann") == [("where is my order?", "m1"), ("thanks", "m2")]

    asyncio.run(scenario())


@pytest.mark.parametrize("channel", CHANNELS)
def test_two_posts_with_one_id_at_once_are_processed_once(channel: type, no_redis: None) -> None:
    async def scenario() -> None:
        bot = CountingBot(seconds_per_message=0.5)
        async with serving(channel(), bot) as post:
            body = {"sender": "ann", "message": "refund please", "message_id": "m1"}
            first, second = await asyncio.gather(post(body), post(body))
        assert first == second and texts(first[1]) == ["#1 refund please"]
        assert await bot.user_messages("ann") == [("refund please", "m1")]

    asyncio.run(scenario())


@pytest.mark.parametrize("channel", CHANNELS)
def test_with_redis_two_servers_process_an_id_once(channel: type, redis_server: RedisServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    sender = f"ann-{channel.name()}"

    async def scenario() -> None:
        bot = CountingBot(seconds_per_message=0.5)  # one tracker store, as replicas share Redis
        async with serving(channel(), bot) as first_server, serving(channel(), bot) as second_server:
            at_once = {"sender": sender, "message": "hello", "message_id": "m1"}
            one, two = await asyncio.gather(first_server(at_once), second_server(at_once))
            later = {"sender": sender, "message": "my order", "message_id": "m2"}
            three = await first_server(later)
            four = await second_server(later)
        assert one == two and texts(one[1]) == ["#1 hello"]
        assert three == four and texts(three[1]) == ["#2 my order"]
        assert await bot.user_messages(sender) == [("hello", "m1"), ("my order", "m2")]

    asyncio.run(scenario())
    assert redis_server.client().ttl(f"kefu:message:{{{sender}}}:m1") > 23 * 3600  # kept a day, then gone


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_retry_after_a_server_died_between_storing_a_turn_and_recording_it_gets_the_stored_replies(
        channel: type, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    sender = f"bea-{channel.name()}"

    async def scenario() -> None:
        bot = CountingBot()
        async with serving(channel(), bot) as post:
            await post({"sender": sender, "message": "hello", "message_id": "m1"})
            # What a server killed after the turn was stored leaves: the turn in the conversation,
            # the id marked as claimed, its claim expired, no replies recorded.
            await bot.handle_message(UserMessage("my order", CollectingOutputChannel(), sender, message_id="m2"))
            RedisRecords(redis_server.client()).claimed_before(message_key(sender, "m2"), 60)
            status, replies = await post({"sender": sender, "message": "my order", "message_id": "m2"})
            fresh = await post({"sender": sender, "message": "thanks", "message_id": "m3"})
        assert status == 200 and texts(replies) == ["#2 my order"]
        assert texts(fresh[1]) == ["#3 thanks"]
        assert await bot.user_messages(sender) == [("hello", "m1"), ("my order", "m2"), ("thanks", "m3")]

    asyncio.run(scenario())


def test_a_record_expires_after_the_configured_time(redis_server: RedisServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)

    async def scenario() -> None:
        bot = CountingBot()
        async with serving(RestInput(MessageIdSettings(expiry_hours=0.3 / 3600)), bot) as post:
            body = {"sender": "expiry", "message": "hi", "message_id": "m1"}
            first, again = await post(body), await post(body)
            await asyncio.sleep(0.5)
            expired = await post(body)
        assert texts(first[1]) == texts(again[1]) == ["#1 hi"] and texts(expired[1]) == ["#2 hi"]

    asyncio.run(scenario())


def test_without_redis_the_oldest_records_are_forgotten_beyond_the_bound(no_redis: None) -> None:
    async def scenario() -> None:
        bot = CountingBot()
        async with serving(RestInput(MessageIdSettings(local_records=2)), bot) as post:
            for message_id in ("m1", "m2", "m3", "m3", "m1"):
                await post({"sender": "ann", "message": message_id, "message_id": message_id})
        assert [text for text, _ in await bot.user_messages("ann")] == ["m1", "m2", "m3", "m1"]

    asyncio.run(scenario())


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_failed_processing_is_not_recorded_and_the_retry_is_processed(channel: type, no_redis: None) -> None:
    async def scenario() -> None:
        bot = CountingBot(failures=1)
        async with serving(channel(), bot) as post:
            body = {"sender": "ann", "message": "hi", "message_id": "m1"}
            failed, retried = await post(body), await post(body)
        assert failed[0] == 503 and "same message_id" in failed[1]["error"]
        assert retried == (200, [{"recipient_id": "ann", "text": "#1 hi"}])

    asyncio.run(scenario())


@pytest.mark.parametrize("channel", CHANNELS)
def test_a_message_id_that_is_not_a_short_string_gets_a_400(channel: type, no_redis: None) -> None:
    async def scenario() -> None:
        bot = CountingBot()
        async with serving(channel(), bot) as post:
            for message_id in ["x" * 129, "", 42, ["m1"], {"id": "m1"}, True]:
                status, body = await post({"sender": "ann", "message": "hi", "message_id": message_id})
                assert status == 400 and "\"message_id\" must be a string of 1 to 128 characters" in body["error"]
            assert (await post({"sender": "ann", "message": "hi", "message_id": "x" * 128}))[0] == 200
        assert await bot.user_messages("ann") == [("hi", "x" * 128)]

    asyncio.run(scenario())


def test_the_guards_refuse_an_oversized_message_before_its_id_is_looked_at(no_redis: None) -> None:
    async def scenario() -> None:
        bot = CountingBot()
        async with serving(RestInput(), bot, WebChatInput()) as post:  # the web chat installs the guards
            for channel in CHANNELS:
                status, replies = await post({"sender": "ann", "message": "x" * 2001, "message_id": "m1"},
                                             channel.name())
                assert status == 200 and "too long" in replies[0]["text"]
        assert await bot.user_messages("ann") == []

    asyncio.run(scenario())


@pytest.mark.parametrize("channel", CHANNELS)
def test_without_a_message_id_every_post_is_processed(channel: type, no_redis: None) -> None:
    async def scenario() -> None:
        bot = CountingBot()
        async with serving(channel(), bot) as post:
            body = {"sender": "ann", "message": "hi"}
            first, second = await post(body), await post(body)
        assert first == (200, [{"recipient_id": "ann", "text": "#1 hi"}])
        assert second == (200, [{"recipient_id": "ann", "text": "#2 hi"}])
        assert [text for text, _ in await bot.user_messages("ann")] == ["hi", "hi"]

    asyncio.run(scenario())


# In the page: the first answered POST is processed, but its reply is lost on the way back.
LOSE_ONE_REPLY = """
const realFetch = window.fetch;
let lost = false;
window.fetch = async (url, options) => {
  const reply = await realFetch(url, options);
  if (!lost && options && options.method === "POST" && reply.ok) {
    lost = true;
    throw new TypeError("the network dropped the reply");
  }
  return reply;
};
"""


def test_the_page_sends_an_id_per_message_and_retries_a_failed_one_with_it(browser: WebDriver, no_redis: None) -> None:
    def bot_texts(driver: WebDriver) -> list[str]:
        return [node.text for node in driver.find_elements(By.CSS_SELECTOR, ".message.bot .bubble")]

    def chat(url: str) -> list[str]:
        browser.get(url)
        browser.execute_script("localStorage.setItem('kefu-sender', 'page');")
        browser.get(url)  # returns once the page has loaded with that sender
        browser.execute_script(LOSE_ONE_REPLY)
        for count, text in enumerate(["hello", "thanks"], start=1):
            WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "text").is_displayed())
            browser.find_element(By.ID, "text").send_keys(text)
            browser.find_element(By.ID, "send").click()
            WebDriverWait(browser, 30).until(lambda d, count=count: len(bot_texts(d)) == count)
        return bot_texts(browser)

    async def scenario() -> None:
        bot = CountingBot(failures=1)  # "hello": a 503, then processed with its reply lost, then its reply
        async with serving(WebChatInput(), bot) as post:
            assert await asyncio.to_thread(chat, post.url) == ["#1 hello", "#2 thanks"]
        (hello, first_id), (thanks, second_id) = await bot.user_messages("page")
        assert bot.failures == 0 and (hello, thanks) == ("hello", "thanks")
        assert first_id != second_id and len(first_id) == 36  # a UUID

    asyncio.run(scenario())
