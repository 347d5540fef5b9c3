"""Which corpus answer a message asks for, in a language no sentence encoder reads
(components/answer_classifier.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.answer_classifier import AnswerClassifier, ClassifierFileError

WRITTEN = "很抱歉，您的付款未成功。请检查卡号、有效期和信用卡额度，然后再试一次。"
DUPLICATE = "如果被重复扣款，多出的那一笔会在 3 个工作日内自动退回，您无需任何操作。"
PAYPAL = "PayPal 付款失败时，请先登录 PayPal 确认账户余额和绑定的银行卡，再回到结账页面重试。"
PAIRS = [
    ("同一个订单扣了两次钱", DUPLICATE, "payment_failed", "zh"),
    ("为什么扣了我两遍款", DUPLICATE, "payment_failed", "zh"),
    ("一笔订单被重复扣款了", DUPLICATE, "payment_failed", "zh"),
    ("PayPal 付不了款怎么办", PAYPAL, "payment_failed", "zh"),
    ("用 PayPal 结账总是失败", PAYPAL, "payment_failed", "zh"),
    ("付款失败怎么办", "很抱歉付款没有成功。请检查卡号、有效期和信用卡额度后再试一次。", "payment_failed", "zh"),
    ("I was charged twice", "The duplicate is released within 3 business days.", "payment_failed", "en"),
]
EXAMPLES = {"payment_failed": [(text, "zh") for text in (
    "付款失败了", "支付不成功", "我的卡被拒了", "付不了钱", "结账时付款出错", "信用卡付款一直失败", "付款被拒绝",
    "银行卡支付失败", "为什么付不了款", "付款时报错")] + [("my payment failed", "en")]}


def classifier() -> AnswerClassifier:
    return AnswerClassifier.fit(PAIRS, EXAMPLES, {("payment_failed", "zh"): WRITTEN}, ["zh", "en"],
                                template_overlap=0.45)


def test_a_new_wording_of_a_corpus_question_finds_its_answer_and_a_plain_one_the_written_response() -> None:
    model = classifier()
    likeliest = model.likeliest("同一笔钱被扣了两遍", "zh", "payment_failed")
    assert likeliest is not None and likeliest.answer == DUPLICATE
    assert likeliest.probability > likeliest.written_response_probability
    likeliest = model.likeliest("PayPal 一直付款失败", "zh", "payment_failed")
    assert likeliest is not None and likeliest.answer == PAYPAL
    plain = model.likeliest("刷卡付款没成功", "zh", "payment_failed")
    assert plain is not None and plain.written_response_probability > 2 * plain.probability


def test_answers_that_say_what_the_written_response_says_are_no_answer_of_their_own() -> None:
    model = classifier()
    _, regression = model.models["zh", "payment_failed"]
    assert sorted(regression.classes_) == sorted(["", DUPLICATE, PAYPAL])  # "" is the written response
    # asked for English too, but English has no written response here: no model, no answer
    assert model.languages == {"zh"} and model.likeliest("I was charged twice", "en", "payment_failed") is None
    assert model.likeliest("同一笔钱被扣了两遍", "zh", "refund_status") is None


def test_a_saved_classifier_answers_the_same_and_a_damaged_file_says_so(tmp_path: Path) -> None:
    model = classifier()
    model.save(tmp_path / "answer_classifier.pkl")
    loaded = AnswerClassifier.load(tmp_path / "answer_classifier.pkl")
    assert loaded.likeliest("同一笔钱被扣了两遍", "zh", "payment_failed") == model.likeliest(
        "同一笔钱被扣了两遍", "zh", "payment_failed")
    (tmp_path / "answer_classifier.pkl").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(ClassifierFileError, match="damaged"):
        AnswerClassifier.load(tmp_path / "answer_classifier.pkl")
    with pytest.raises(ClassifierFileError, match="missing"):
        AnswerClassifier.load(tmp_path / "elsewhere.pkl")
