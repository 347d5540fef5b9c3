"""What a generated reply must pass before it is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.replies import (
    FactsFileError,
    ShopFacts,
    drop_blocked,
    factual_claims,
    fill_placeholders,
    limit_length,
)
from tests.conftest import PROJECT


@pytest.fixture(scope="module")
def facts() -> ShopFacts:
    return ShopFacts.load(PROJECT / "data" / "shop_facts.yml")


def test_every_answer_in_the_projects_corpus_agrees_with_the_shop_facts(facts: ShopFacts) -> None:
    checked = 0
    for path in sorted((PROJECT / "data" / "corpus").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            said = " ".join([record["question"], *record.get("context", [])])
            assert not facts.unsupported_claims(record["answer"], said), record["answer"]
            checked += 1
    assert checked > 500


@pytest.mark.parametrize("reply", [
    "Returns are accepted within 60 days of delivery.",
    "Standard delivery costs $5.95.",
    "Express delivery takes 3-4 business days.",
    "退款会在十天内到账。",
    "标准配送需要7个工作日。",
    "工作日下单后48小时内发货。",
    "加急配送运费¥12。",
    "退货期限是两个月。",
])
def test_an_invented_number_duration_or_price_is_caught(facts: ShopFacts, reply: str) -> None:
    assert facts.unsupported_claims(reply)


@pytest.mark.parametrize("reply", [
    "Standard delivery takes 3–5 business days and costs $4.95 under $50.",
    "You can return it within 30 days; the 30-day window starts at delivery.",
    "退款会在5到7个工作日内退回原支付方式。",
    "下一个工作日我们会联系您。",
    "工作日下单后24小时内发货，快递1-2个工作日送达，运费9.90美元。",
    "标准配送需要3–5个工作日，满$50包邮。",
    "Your order [ORDER_ID] has shipped.",
])
def test_stated_facts_pass(facts: ShopFacts, reply: str) -> None:
    assert not facts.unsupported_claims(reply)


def test_numbers_the_customer_gave_may_be_repeated(facts: ShopFacts) -> None:
    reply = "At $47 the order is below $50, so Standard delivery costs $4.95."
    assert facts.unsupported_claims(reply) == {"price 47"}
    assert not facts.unsupported_claims(reply, "my basket is $47, is delivery free?")


def test_claims_are_normalised_across_writing_styles() -> None:
    assert factual_claims("$4.95") == factual_claims("4.95 dollars") == {"price 4.95"}
    assert factual_claims("3-5 business days") == factual_claims("3 to 5 days") == factual_claims("3到5个工作日")
    assert factual_claims("七天") == factual_claims("7 days")


def test_placeholders_are_filled_or_their_sentence_dropped() -> None:
    reply = "Order {{Order Number}} has shipped. We e-mailed [EMAIL]. Anything else?"
    assert fill_placeholders(reply, {"order_id": "12345"}) == "Order 12345 has shipped. Anything else?"
    assert fill_placeholders(reply, {"order_id": "12345", "email": "a@b.co"}) == (
        "Order 12345 has shipped. We e-mailed a@b.co. Anything else?")
    assert fill_placeholders("Your order [ORDER_ID] is late.", {}) == ""


def test_blocked_phrases_and_length() -> None:
    assert drop_blocked("That is stupid. Here is the fix.", ["stupid"]) == "Here is the fix."
    assert drop_blocked("Ask for a refund.", ["fund"]) == "Ask for a refund."  # whole words only
    assert limit_length("One two. Three four five. Six.", 20) == "One two."
    assert limit_length("a very long sentence without any end", 12) == "a very long…"


def test_prices_keep_their_decimal_point_when_a_reply_is_cut_into_sentences() -> None:
    # a corpus answer sent as "$4. 95" read as two sentences
    reply = "Standard delivery is $4.95 under $50; express costs $9.90. Orders ship within 24 hours."
    assert limit_length(reply, 600) == reply
    assert limit_length(reply, 60) == "Standard delivery is $4.95 under $50; express costs $9.90."
    chinese = "不满 $50 运费为 $4.95；加急配送费用为 $9.90。"
    assert limit_length(chinese, 600) == chinese
    assert drop_blocked("It costs $4.95. Ask a human.", ["human"]) == "It costs $4.95."


def test_a_bad_facts_file_gets_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FactsFileError, match="no such facts file"):
        ShopFacts.load(tmp_path / "missing.yml")
    broken = tmp_path / "facts.yml"
    broken.write_text("delivery: [unclosed\n")
    with pytest.raises(FactsFileError, match="facts.yml: not valid YAML"):
        ShopFacts.load(broken)
    broken.write_text("delivery: takes long\n")
    with pytest.raises(FactsFileError, match="expected topics"):
        ShopFacts.load(broken)
