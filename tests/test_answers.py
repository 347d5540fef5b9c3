"""The answer choice on its own (components/answers.py): which kind of answer a message gets."""

from __future__ import annotations

from components.answers import CLARIFY, GENERATED, HANDOFF, TEMPLATE, AnswerChooser, ChoiceSettings, shop_vocabulary

SHOP_TEXTS = [
    "We accept Visa, Mastercard, PayPal, Apple Pay and gift cards.",
    "Can I pay with PayPal?", "which payment methods do you take",
    "我们支持 Visa、PayPal 和本店礼品卡。", "可以用信用卡付款吗", "快递几天能到", "运费多少",
]
SETTINGS = ChoiceSettings(closed_intents=["payment_methods", "delivery_time"], keep_template_intents=["greet"])
ANSWERABLE = {"payment_methods", "payment_failed", "delivery_time", "order_status"}


def chooser() -> AnswerChooser:
    return AnswerChooser(shop_vocabulary(SHOP_TEXTS), SETTINGS)


def test_a_payment_method_the_shop_never_mentions_gets_a_person() -> None:
    choice = chooser().before_generating("can I pay with dogecoin?", "en", "payment_methods",
                                         [("payment_methods", 0.9)], ANSWERABLE, "nlu_fallback")
    assert choice is not None and choice.kind == HANDOFF and "dogecoin" in choice.reason
    choice = chooser().before_generating("可以用比特币付款吗？", "zh", "payment_methods",
                                         [("payment_methods", 0.9)], ANSWERABLE, "nlu_fallback")
    assert choice is not None and choice.kind == HANDOFF and "比特" in choice.reason


def test_known_words_typos_and_new_compounds_leave_the_answer_to_the_generator() -> None:
    for text, lang in [("can I pay with paypall?", "en"), ("Which payment methods?", "en"),
                       ("快递费多少", "zh"), ("可以用信用卡付款吗", "zh")]:
        assert chooser().before_generating(text, lang, "payment_methods", [("payment_methods", 0.9)],
                                           ANSWERABLE, "nlu_fallback") is None, text


def test_open_intents_and_kept_templates_never_offer_a_person_for_new_words() -> None:
    assert chooser().before_generating("my zebra payment failed", "en", "payment_failed",
                                       [("payment_failed", 0.9)], ANSWERABLE, "nlu_fallback") is None
    choice = chooser().before_generating("hello zebra", "en", "greet", [("greet", 0.9)], ANSWERABLE, "nlu_fallback")
    assert choice is not None and choice.kind == TEMPLATE


def test_nlu_torn_between_two_intents_asks_which_one() -> None:
    ranking = [("nlu_fallback", 0.4), ("payment_failed", 0.35), ("payment_methods", 0.3), ("greet", 0.1)]
    choice = chooser().before_generating("payment thing", "en", "nlu_fallback", ranking, ANSWERABLE, "nlu_fallback")
    assert choice is not None and choice.kind == CLARIFY
    assert choice.intents == ("payment_failed", "payment_methods")


def test_an_unsure_nlu_without_two_likely_intents_keeps_the_fallback() -> None:
    for ranking in ([("nlu_fallback", 0.4), ("payment_failed", 0.2), ("greet", 0.1)],  # too unlikely together
                    [("nlu_fallback", 0.4), ("payment_failed", 0.5), ("payment_methods", 0.05)],  # one stands out
                    [("nlu_fallback", 0.4), ("payment_failed", 0.4), ("bot_challenge", 0.3)]):  # no label
        choice = chooser().before_generating("hm", "en", "nlu_fallback", ranking, ANSWERABLE, "nlu_fallback")
        assert choice is not None and choice.kind == TEMPLATE, ranking


TEMPLATE_TEXT = "Sorry your payment didn't go through. Please check your card details and try again."
DUPLICATE = "If you were charged twice, the duplicate charge is released automatically within 3 business days."


def test_the_generated_reply_wins_only_when_sure_true_to_the_facts_and_more_than_the_template() -> None:
    def kind(reply: str, confidence: float, passes_facts: bool = True) -> str:
        return chooser().after_generating("payment_failed", reply, confidence, passes_facts, TEMPLATE_TEXT).kind

    assert kind(DUPLICATE, 0.9) == GENERATED
    assert kind(DUPLICATE, 0.5) == TEMPLATE  # unsure
    assert kind(DUPLICATE, 0.9, passes_facts=False) == TEMPLATE
    assert kind("Sorry your payment didn't go through. Please check your card details.", 0.9) == TEMPLATE
