"""Whole conversations in Chinese, and a customer switching language mid-conversation."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from components.text import message_language
from tests.conftest import KEFU, PROJECT, Assistant

_CHINESE = re.compile(r"[\u4e00-\u9fff]")
_LATIN_WORDS = re.compile(r"[A-Za-z]{4,}")
# Names the Chinese replies keep in Latin script.
_NAMES = {"Kefu", "Visa", "Mastercard", "American", "Express", "PayPal", "Apple", "Google", "FedEx", "Secure"}


def new_conversation() -> str:
    return f"zh-{uuid.uuid4().hex[:12]}"


def is_chinese(reply: str) -> bool:
    """Chinese text, with no English sentence in it and full-width punctuation."""
    english = [w for w in _LATIN_WORDS.findall(reply) if w not in _NAMES]
    return bool(_CHINESE.search(reply)) and not english and not re.search(r"[\u4e00-\u9fff][,:?!] ?", reply)


def is_english(reply: str) -> bool:
    return not _CHINESE.search(reply) and bool(_LATIN_WORDS.search(reply))


@pytest.mark.parametrize(
    ("message", "expected_reply"),
    [
        ("你好", "请问今天有什么可以帮您"),
        ("我的订单 12345 到哪了", "订单12345已由UPS发货"),
        # a way to pay the shop does not take gets a no that names it, then the list
        ("可以用微信支付吗？", "微信支付不在我们的支付方式之内。我们接受Visa"),
        # so does a place it does not deliver to
        ("能寄到墨西哥吗", "抱歉，我们无法配送到墨西哥：我们只配送美国和加拿大境内的地址"),
        ("我要退货", "30天内退货"),
        # the template or, with the answer choice, a corpus answer in other words: both say to check these
        ("付款一直失败怎么办", "账单地址"),
        ("我的包裹显示已签收但我没收到", "深表歉意"),
        ("你是机器人吗", "虚拟助手"),
        ("谢谢你", "不客气"),
    ],
)
def test_chinese_questions_get_chinese_answers(assistant: Assistant, message: str, expected_reply: str) -> None:
    replies = assistant.say(message, new_conversation())
    assert any(expected_reply in reply for reply in replies), replies
    assert all(is_chinese(reply) for reply in replies), replies
    assert not any("我没有理解" in reply for reply in replies), replies  # no fallback after it


def test_a_shop_question_the_templates_do_not_cover_gets_a_chinese_answer(assistant: Assistant) -> None:
    replies = assistant.say("怎么开发票？", new_conversation())
    assert replies and all(is_chinese(reply) for reply in replies), replies
    assert any("发票" in reply for reply in replies), replies


def test_order_status_form_in_chinese_with_a_wrong_then_a_right_number(assistant: Assistant) -> None:
    conversation = new_conversation()
    asked = assistant.say("帮我查一下物流", conversation)
    assert any("请问您的订单号是多少" in reply for reply in asked), asked

    replies = assistant.say("abc-12", conversation)
    assert any("看起来不是订单号" in reply for reply in replies), replies
    assert any("请问您的订单号是多少" in reply for reply in replies), replies

    replies = assistant.say("订单号是 48213", conversation)
    assert any("订单48213正在备货" in reply for reply in replies), replies
    assert all(is_chinese(reply) for reply in replies), replies


def test_an_unknown_number_is_named_in_chinese(assistant: Assistant) -> None:
    conversation = new_conversation()
    assistant.say("我的订单到哪了", conversation)
    replies = assistant.say("99999", conversation)  # digits alone keep the conversation's language
    assert any("找不到订单99999" in reply for reply in replies), replies


def test_switching_language_mid_conversation(assistant: Assistant) -> None:
    conversation = new_conversation()
    assert all(is_chinese(r) for r in assistant.say("你好", conversation))
    replies = assistant.say("where is my order?", conversation)
    assert any("What is your order number?" in reply for reply in replies), replies
    assert all(is_english(reply) for reply in replies), replies
    replies = assistant.say("70021", conversation)
    assert any("Order 70021 was delivered by FedEx" in reply for reply in replies), replies
    replies = assistant.say("退款多久到账？", conversation)
    assert replies and all(is_chinese(reply) for reply in replies), replies


@pytest.mark.parametrize("message", ["I want 发票", "can I 预购", "size 尺码 help", "保修 policy?",
                                     "my 优惠码 no work"])
def test_a_message_mixing_both_languages_gets_replies_in_the_one_it_is_read_as(
        assistant: Assistant, message: str) -> None:
    # the generator may answer a mixed message in its other language; the reply then is the
    # corpus answer in the conversation's language, so it matches the buttons and questions after it
    replies = assistant.say(message, new_conversation())
    checks = {"zh": is_chinese, "en": is_english}[message_language(message)]
    assert replies and all(checks(reply) for reply in replies), replies


def test_handoff_and_resume_in_chinese(assistant: Assistant, handoff_db: Path, endpoints_file: Path) -> None:
    conversation = new_conversation()
    replies = assistant.say("转人工", conversation)
    assert any("为您转接我们的客服团队" in reply for reply in replies), replies
    assert assistant.say("有人吗？", conversation) == []

    resumed = subprocess.run(
        [KEFU, "handoff", "resume", conversation, "--db", str(handoff_db), "--endpoints", str(endpoints_file),
         "--domain", "domain.yml"], cwd=PROJECT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    replies = assistant.say("你好", conversation)
    assert any("请问今天有什么可以帮您" in reply for reply in replies), replies


def test_thumbs_down_and_a_correction_in_chinese(assistant: Assistant) -> None:
    conversation = new_conversation()
    replies = assistant.reply_messages("礼物可以包装吗？", conversation)
    buttons = [b for r in replies for b in r.get("buttons") or []]
    assert [b["title"] for b in buttons] == ["👍", "👎"], replies
    assert any("这个回答有帮助吗" in (r.get("text") or "") for r in replies), replies
    [thumbs_down] = [b["payload"] for b in buttons if b["title"] == "👎"]
    assert json.loads(thumbs_down.removeprefix("/feedback"))["reply_id"]
    assert "正确的回答应该是什么" in " ".join(assistant.say(thumbs_down, conversation))
    assert "谢谢您的反馈" in " ".join(assistant.say("结账时勾选“这是礼物”就可以。", conversation))
