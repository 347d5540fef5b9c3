"""GenerativeResponsePolicy's answer choice in the assistant of config.yml: the corpus's more
specific answer instead of the template, a person for a question the facts do not cover, a
question back when NLU is torn, and the template where it covers the question."""

from __future__ import annotations

import uuid

from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from components.policies import GenerativeResponsePolicy
from tests.conftest import Assistant


def answering_actions(assistant: Assistant, sender: str) -> list[str]:
    tracker = assistant.loop.run_until_complete(assistant.agent.tracker_store.retrieve(sender))
    return [e.action_name for e in tracker.events if isinstance(e, ActionExecuted)
            and e.action_name not in ("action_listen", "action_ask_feedback", "action_session_start")]


def policy(assistant: Assistant) -> GenerativeResponsePolicy:
    [found] = [node._component for node in assistant.agent.processor.graph_runner._instantiated_nodes.values()
               if isinstance(node._component, GenerativeResponsePolicy)]
    return found


def test_a_double_charge_gets_the_corpus_answer_not_the_failed_payment_template(assistant: Assistant) -> None:
    """These are corpus questions whose answer the template does not give."""
    answered = {}
    for question in ("I was charged twice", "you took my money two times!!", "double charge on my credit card"):
        sender = f"choice-{uuid.uuid4().hex}"
        answered[question] = (" ".join(assistant.say(question, sender)), answering_actions(assistant, sender))
    specific = [q for q, (reply, _) in answered.items() if "3 business days" in reply and "duplicate" in reply]
    assert len(specific) >= 2, answered
    assert all(actions[-1] == "utter_generated_reply" for q, (_, actions) in answered.items() if q in specific)


def test_a_payment_method_the_shop_never_names_gets_the_offer_of_a_person(assistant: Assistant) -> None:
    for question, offer, yes in [("can I pay with dogecoin?", "member of our team", "yes please"),
                                 ("可以用狗狗币付款吗？", "转接", "好的")]:
        sender = f"choice-{uuid.uuid4().hex}"
        messages = assistant.reply_messages(question, sender)
        assert offer in messages[-1]["text"], messages
        assert [b["payload"] for b in messages[-1]["buttons"]] == ["/human_handoff", "/deny"]
        assert answering_actions(assistant, sender)[-1] == "utter_offer_handoff"
        assistant.say(yes, sender)
        assert answering_actions(assistant, sender)[-1] == "action_human_handoff"


def test_the_template_answers_where_it_covers_the_question(assistant: Assistant) -> None:
    for question, response in [("how long does delivery take?", "utter_delivery_time"),
                               ("which payment methods do you accept?", "utter_payment_methods"),
                               ("怎么退货？", "utter_return_item")]:
        sender = f"choice-{uuid.uuid4().hex}"
        assistant.say(question, sender)
        assert answering_actions(assistant, sender)[-1] == response, question


def test_nlu_torn_between_two_intents_gets_a_question_back_in_the_customers_language(assistant: Assistant) -> None:
    chooser = policy(assistant)
    domain = assistant.agent.domain
    for text, lang, question in [("payment problem", "en", "Just to be sure"), ("付款的问题", "zh", "想确认一下")]:
        ranking = [{"name": "nlu_fallback", "confidence": 0.4}, {"name": "payment_failed", "confidence": 0.38},
                   {"name": "payment_methods", "confidence": 0.33}, {"name": "greet", "confidence": 0.01}]
        tracker = DialogueStateTracker.from_events(f"choice-{uuid.uuid4().hex}", [
            ActionExecuted("action_listen"),
            UserUttered(text, intent=ranking[0], parse_data={"intent": ranking[0], "intent_ranking": ranking,
                                                             "entities": [], "text": text}),
            SlotSet("language", lang)], slots=domain.slots)
        prediction = chooser.predict_action_probabilities(tracker, domain)
        assert domain.action_names_or_texts[prediction.max_confidence_index] == "utter_clarify"
        slots = {e.key: e.value for e in prediction.optional_events if isinstance(e, SlotSet)}
        assert slots["clarify_first_intent"] == "payment_failed" and slots["clarify_second_intent"] == "payment_methods"
        labels = chooser.learnt.intent_labels
        assert slots["clarify_first"] == labels["payment_failed"][lang]
        assert prediction.policy_priority > 4  # above RulePolicy's, so it wins over the fallback rule
        response = domain.responses["utter_clarify"]
        assert any(question in variant["text"] for variant in response)
