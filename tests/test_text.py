"""Normalisation, language detection, PII masking and tokenisation."""

from __future__ import annotations

import pytest

from components.text import (
    PiiMasker,
    detect_language,
    join_sentences,
    message_language,
    normalise,
    tokenize,
    written_in,
)


@pytest.mark.parametrize(
    ("text", "masked", "kind"),
    [
        ("write to anna.lee+shop@mail.example.com today", "write to [EMAIL] today", "[EMAIL]"),
        ("邮箱是wang.fang@example.cn谢谢", "邮箱是[EMAIL]谢谢", "[EMAIL]"),
        ("call me on +44 20 7946 0958", "call me on [PHONE]", "[PHONE]"),
        ("or (555) 123-4567 after six", "or [PHONE] after six", "[PHONE]"),
        ("我的手机是13800138000，谢谢", "我的手机是[PHONE]，谢谢", "[PHONE]"),
        ("+86 139 1234 5678", "[PHONE]", "[PHONE]"),
        ("card 4111 1111 1111 1111 was charged", "card [CARD] was charged", "[CARD]"),
        ("amex 3782-822463-10005", "amex [CARD]", "[CARD]"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "IBAN [IBAN] please", "[IBAN]"),
        ("refund to DE89370400440532013000", "refund to [IBAN]", "[IBAN]"),
        ("身份证号11010519491231002X", "身份证号[ID]", "[ID]"),
        ("where is order #48213?", "where is order [ORDER_ID]?", "[ORDER_ID]"),
        ("订单12345678还没到", "订单[ORDER_ID]还没到", "[ORDER_ID]"),
    ],
)
def test_each_pii_kind_is_masked(text: str, masked: str, kind: str) -> None:
    masker = PiiMasker()
    assert masker.mask(text) == masked
    assert masker.masked[kind] >= 1


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 was charged",  # fails the Luhn check
        "ticket 1234567812345678",  # Luhn-invalid 16 digits
        "ID 110105194912310021",  # wrong ID check digit
        "IBAN GB00 WEST 1234 5698 7654 32",  # wrong IBAN checksum
        "we ship in 3-5 business days for $4.95",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert PiiMasker().mask(text) == text


def test_template_placeholders_are_kept() -> None:
    text = "Your order {{Order Number}} ships to {{Delivery City}}; ref 48213"
    assert PiiMasker().mask(text) == "Your order {{Order Number}} ships to {{Delivery City}}; ref [ORDER_ID]"


def test_order_pattern_is_configurable() -> None:
    masker = PiiMasker(order_id_pattern=r"\bKF-\d{4}\b")
    assert masker.mask("order KF-1234 and 48213") == "order [ORDER_ID] and 48213"


def test_normalise_cleans_html_controls_and_width() -> None:
    assert normalise("<p>Hi&nbsp;there,\x00 <b>ＡＢＣ</b>\u200b&amp; co</p>\n\n") == "Hi there, ABC & co"


def test_chinese_text_keeps_its_full_width_punctuation() -> None:
    assert normalise("您好！请问有什么可以帮您？ 运费：4.95美元，满50美元包邮。") == \
        "您好！请问有什么可以帮您？运费：4.95美元，满50美元包邮。"
    assert normalise("营业时间 8:00-20:00（美东时间）") == "营业时间 8:00-20:00（美东时间）"
    assert normalise("Hi, is it 8:00?") == "Hi, is it 8:00?"


def test_sentences_join_with_a_space_only_where_the_language_writes_one() -> None:
    assert join_sentences(["您好。", "我们24小时内发货。"], "zh") == "您好。我们24小时内发货。"
    assert join_sentences(["Hello.", "We ship within 24 hours."], "en") == "Hello. We ship within 24 hours."


def test_a_message_without_letters_has_no_language() -> None:
    assert message_language("12345") is None and message_language("👍") is None
    assert message_language("abc-12") is None and message_language("#A77-B2") is None
    assert message_language("我要退货") == "zh" and message_language("I want a refund") == "en"


def test_a_chinese_reply_naming_many_brands_is_still_chinese() -> None:
    reply = "可以！支持 Visa、Mastercard、American Express、PayPal、Apple Pay 和 Google Pay。"
    assert detect_language(reply) == "zh"  # its grammar is Chinese (可以, 和), its names Latin
    assert written_in(reply, "zh") and not written_in(reply, "en")
    assert written_in("Yes, we take PayPal.", "en") and not written_in("Yes, we take PayPal.", "zh")
    assert written_in("Yes, we take PayPal.", None)


@pytest.mark.parametrize(
    ("text", "lang"),
    [("where is my order?", "en"), ("我的订单在哪里？", "zh"), ("订单 [ORDER_ID] 在哪里", "zh"),
     ("my 订单 is late, please check it today", "en"),
     # mixed: the language whose grammar words it uses, not the one it borrows a name or noun from
     ("can I pay with 支付宝?", "en"), ("can you 转人工 please", "en"), ("我要 real person", "zh"),
     ("怎么 reset password", "zh"), ("thanks 啦，很有用", "zh"), ("谢谢 kefu, super helpful", "en")],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


def test_english_tokens_keep_placeholders_whole() -> None:
    assert tokenize("Hi, mail [EMAIL] about {{Order Number}} now!", "en") == [
        "Hi", ",", "mail", "[EMAIL]", "about", "{{Order Number}}", "now", "!"
    ]


def test_chinese_is_segmented_into_words_by_jieba() -> None:
    tokens = tokenize("我想查询一下我的订单状态", "zh")
    assert "订单" in tokens and "查询" in tokens
    assert "".join(tokens) == "我想查询一下我的订单状态"
