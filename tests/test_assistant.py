"""Whole conversations with the trained assistant and its action server."""

from __future__ import annotations

import uuid

import pytest

from components.loaded_components import loaded_components
from tests.conftest import Assistant


def new_conversation() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize(
    ("message", "expected_reply"),
    [
        ("hello!", "How can I help you today?"),
        ("are you a real person or a bot?", "virtual assistant (a bot)"),
        ("how long will shipping take to Canada?", "Standard delivery takes 3-5 business days"),
        ("can my order be sent to London instead?", "Sorry, we can't deliver to London: we only ship to"),
        ("which payment options do you accept?", "Visa, Mastercard, American Express, PayPal"),
        ("can I pay with bitcoin?", "Sorry, we don't accept bitcoin. We accept Visa"),
        ("my payment was declined", "A declined payment is never charged"),
        ("how do I cancel an order I just placed?", "cancel an order free of charge until it ships"),
        ("I need to change my delivery address", "change the delivery address until the order ships"),
        ("I want to return a pair of shoes", "within 30 days of delivery"),
        ("when do I get my refund?", "within 5-7 business days after your return"),
        ("I forgot my password", "Forgot password?"),
        ("is the red hoodie in stock?", "Notify me"),
        ("the package arrived damaged and I'm really unhappy", "I'm really sorry"),
        ("thank you so much", "You're welcome"),
        ("goodbye", "Goodbye"),
    ],
)
def test_intents_get_their_answers(assistant: Assistant, message: str, expected_reply: str) -> None:
    replies = assistant.say(message, new_conversation())
    assert any(expected_reply in reply for reply in replies), replies
    assert not any("Sorry, I didn't get that" in reply for reply in replies), replies  # no fallback after it


@pytest.mark.parametrize(("message", "expected_reply"), [
    ("yes", "what can I help you with?"), ("no", "anything else I can help you with?"),
    ("是的", "请问有什么可以帮您"), ("不用了", "还有什么可以帮您的吗"),
])
def test_a_yes_or_no_before_the_bot_asked_anything_gets_a_question_back(
        assistant: Assistant, message: str, expected_reply: str) -> None:
    replies = assistant.say(message, new_conversation())
    assert any(expected_reply in reply for reply in replies), replies


@pytest.mark.parametrize(("message", "yes", "answer"), [
    ("how long does delivery to Texas take?", "Yes, we deliver to Texas: we ship to addresses anywhere in the US",
     "business days"),
    ("寄到温哥华要几天", "可以，温哥华在我们的配送范围内", "工作日"),
])
def test_a_place_the_shop_delivers_to_gets_a_yes_then_the_answer(
        assistant: Assistant, message: str, yes: str, answer: str) -> None:
    replies = assistant.say(message, new_conversation())
    assert len(replies) >= 2 and yes in replies[0] and answer in replies[1], replies


def test_order_number_in_the_question_is_answered_at_once(assistant: Assistant) -> None:
    replies = assistant.say("where is my order 12345?", new_conversation())
    assert replies == [
        "Order 12345 has shipped with UPS and is on its way (tracking number "
        "1Z999AA10123456784). Standard delivery takes 3-5 business days, express 1-2."
    ]


def test_form_asks_for_the_order_number_then_answers(assistant: Assistant) -> None:
    conversation = new_conversation()
    asked = assistant.say("can you track my package for me?", conversation)
    assert any("What is your order number?" in reply for reply in asked), asked

    answered = assistant.say("it's #48213", conversation)
    assert any("Order 48213 is being prepared" in reply for reply in answered), answered

    # The number is forgotten afterwards, so a second question asks again.
    asked_again = assistant.say("where is my order?", conversation)
    assert any("What is your order number?" in reply for reply in asked_again), asked_again


def test_invalid_order_number_is_explained_and_asked_again(assistant: Assistant) -> None:
    conversation = new_conversation()
    assistant.say("where is my parcel?", conversation)

    replies = assistant.say("abc-12", conversation)
    assert any("doesn't look like an order number" in reply for reply in replies), replies
    assert any("5 to 8 digits" in reply for reply in replies), replies
    assert any("What is your order number?" in reply for reply in replies), replies

    replies = assistant.say("70021", conversation)
    assert any("Order 70021 was delivered by FedEx" in reply for reply in replies), replies


def test_unknown_order_number_says_so(assistant: Assistant) -> None:
    replies = assistant.say("where is order 99999?", new_conversation())
    assert any("I couldn't find order 99999" in reply for reply in replies), replies


@pytest.mark.parametrize(("message", "expected_reply"), [
    ("I sent my parcel back a month ago and there's still no refund",
     "I'm sorry, that has taken longer than it should, so a member of our team should look into it"),
    ("I sent my parcel back 2 days ago and there's no refund yet", "within 5-7 business days"),
    ("退货寄回去三周了，钱还没退回来", "非常抱歉，这已经超出了应有的时间"),
])
def test_a_wait_past_the_answers_time_gets_a_person_and_a_short_one_the_answer(
        assistant: Assistant, message: str, expected_reply: str) -> None:
    conversation = new_conversation()
    replies = assistant.say(message, conversation)
    assert any(expected_reply in reply for reply in replies), replies
    if "抱歉" in expected_reply or "sorry" in expected_reply:  # offered a person: yes hands over
        handed = assistant.say("是的" if "抱歉" in expected_reply else "yes please", conversation)
        assert any("handing you over" in reply or "转接" in reply for reply in handed), handed


@pytest.mark.parametrize(
    "message",
    ["", "   ", "a" * 10_000, "🙂🙂🙂👍", "你好，我的订单在哪里？", "\x00\x01\x02 binary \ufffd"],
    ids=["empty", "blank", "10k-chars", "emoji", "chinese", "control-chars"],
)
def test_bad_input_gets_a_reply(assistant: Assistant, message: str) -> None:
    replies = assistant.say(message, new_conversation())
    assert replies and all(reply.strip() for reply in replies), replies


def test_every_tensorflow_model_of_the_assistant_is_loaded(assistant: Assistant) -> None:
    """Rasa leaves a policy without its model when loading it fails, and the bot still answers from rules."""
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier

    components = loaded_components(assistant.agent.processor, DIETClassifier, TEDPolicy).values()
    loaded = {type(component).__name__: component.model is not None for component in components}
    assert loaded == {"DIETClassifier": True, "TEDPolicy": True}
