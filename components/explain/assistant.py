"""`AssistantExplainer`: explains a trained Kefu model's answer to one message or one stored turn.

The Rasa side of `kefu explain`: it parses the perturbed messages of the word attributions in
batches through the model's own NLU graph (so any pipeline can be explained), runs every policy
of the model on the conversation to show who answered with what confidence, and replays the
generative policy's steps (decoding with attention, the reply checks) for a generated answer or
a fallback. The attribution maths and the rendering live in `attribution.py` and `report.py`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from components.action_names import GENERATED_REPLY_ACTION
from components.explain.attribution import MessageTokens, lime_attributions, sample_count
from components.explain.report import (
    LABELS,
    Evidence,
    Explanation,
    GeneratedReplyExplanation,
    IntentExplanation,
    IntentWeights,
    PolicyScore,
    ReplyCheck,
)
from components.loaded_components import loaded_components
from components.text import detect_language

UNSURE_INTENT = "nlu_fallback"  # FallbackClassifier's intent
FALLBACK_ACTIONS = ("action_default_fallback", "action_two_stage_fallback")
HANDOFF_ACTIONS = ("action_human_handoff", "utter_offer_handoff", "utter_offer_handoff_overdue",
                   "utter_offer_handoff_after_answer")
BATCH = 64  # perturbed messages parsed in one run of the NLU graph


class ExplainError(ValueError):
    """A conversation or turn that cannot be explained; the message says what to pass instead."""


def open_tracker_store(endpoints: Path, domain: Any) -> Any:  # noqa: ANN401 - rasa's TrackerStore
    """The tracker store endpoints.yml configures (Kefu's Redis store, or SQLite without REDIS_URL)."""
    from rasa.core.tracker_store import InMemoryTrackerStore, TrackerStore
    from rasa.core.utils import AvailableEndpoints

    if not endpoints.is_file():
        raise ExplainError(f"{endpoints}: no such file; pass --endpoints")
    store = TrackerStore.create(AvailableEndpoints.read_endpoints(str(endpoints)).tracker_store, domain=domain)
    if isinstance(store, InMemoryTrackerStore):
        raise ExplainError(f"{endpoints}: the tracker store is in memory, so no stored conversation can be read; "
                           "configure Kefu's Redis store or a SQL store")
    return store


class AssistantExplainer:
    """Explanations from a loaded Rasa agent (`load` reads a model archive)."""

    def __init__(self, agent: Any, samples: int = 128, seed: int = 0, model_name: str = "") -> None:
        self.agent = agent
        self.processor = agent.processor
        self.domain = agent.domain
        self.samples, self.seed = samples, seed
        self.model_name = model_name
        self._corpus: tuple[Any, list[Any]] | None = None

    @classmethod
    def load(cls, model: Path, samples: int = 128, seed: int = 0) -> AssistantExplainer:
        """The model in `model`, with Rasa's debug logging off: an explanation parses hundreds of
        messages, and each would log a line."""
        import logging

        from rasa.core.agent import Agent
        from rasa.utils.log_utils import configure_structlog

        configure_structlog(logging.WARNING)
        if not Path(model).is_file():
            raise ExplainError(f"{model}: no such model archive; train one with `rasa train`")
        return cls(Agent.load(str(model)), samples, seed, Path(model).name)

    # ---- NLU -------------------------------------------------------------------------------

    def parse_many(self, texts: Sequence[str]) -> list[dict[str, Any]]:
        """Rasa's parse of each text, through the model's NLU graph in batches."""
        from rasa.core.channels.channel import UserMessage
        from rasa.engine.constants import PLACEHOLDER_MESSAGE, PLACEHOLDER_TRACKER
        from rasa.shared.core.trackers import DialogueStateTracker

        target = self.processor.model_metadata.nlu_target
        tracker = DialogueStateTracker.from_events("explain", [])
        parsed: list[dict[str, Any]] = []
        for start in range(0, len(texts), BATCH):
            messages = [UserMessage(text, sender_id="explain") for text in texts[start : start + BATCH]]
            results = self.processor.graph_runner.run(
                inputs={PLACEHOLDER_MESSAGE: messages, PLACEHOLDER_TRACKER: tracker}, targets=[target])
            parsed += [message.as_dict(only_output_properties=True) for message in results[target]]
        return parsed

    def classify(self, texts: Sequence[str]) -> list[dict[str, float]]:
        """Each text's intent confidences as the classifier ranks them, the fallback set aside."""
        return [{r["name"]: float(r["confidence"]) for r in parse.get("intent_ranking") or []
                 if r["name"] != UNSURE_INTENT} for parse in self.parse_many(texts)]

    def explain_intent(self, text: str) -> IntentExplanation:
        start = time.perf_counter()
        [parse] = self.parse_many([text])
        ranking = [(r["name"], float(r["confidence"])) for r in parse.get("intent_ranking") or []]
        ranked = [(name, confidence) for name, confidence in ranking if name != UNSURE_INTENT][:2]
        message = MessageTokens.of(text)
        weights = lime_attributions(message, self.classify, [name for name, _ in ranked], self.samples, self.seed)
        explained = [IntentWeights(name, confidence, [round(float(w), 4) for w in weights[name]])
                     for name, confidence in ranked]
        intent = parse.get("intent") or {}
        return IntentExplanation(
            text=text, language=detect_language(text), tokens=list(message.tokens),
            intent=intent.get("name") or "", confidence=float(intent.get("confidence") or 0.0),
            predicted=explained[0] if explained else IntentWeights("", 0.0, [0.0] * len(message)),
            runner_up=explained[1] if len(explained) > 1 else None, ranking=ranking,
            method=f"LIME-style ridge fit on {sample_count(len(message), self.samples)} messages with words removed "
                   f"(seed {self.seed}), the whole Rasa NLU pipeline as the classifier",
            seconds=round(time.perf_counter() - start, 3))

    # ---- conversations -----------------------------------------------------------------------

    async def tracker_for(self, text: str) -> Any:  # noqa: ANN401 - DialogueStateTracker
        """A new conversation holding `text`, as the processor would log it (slots extracted)."""
        from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
        from rasa.shared.core.constants import ACTION_LISTEN_NAME, ACTION_SESSION_START_NAME
        from rasa.shared.core.events import ActionExecuted, SessionStarted, UserUttered
        from rasa.shared.core.trackers import DialogueStateTracker

        sender = f"explain-{uuid.uuid4().hex}"
        tracker = DialogueStateTracker.from_events(sender, [ActionExecuted(ACTION_SESSION_START_NAME),
                                                            SessionStarted(), ActionExecuted(ACTION_LISTEN_NAME)],
                                                   slots=self.domain.slots)
        parse = await self.processor.parse_message(UserMessage(text, sender_id=sender), tracker)
        tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse), self.domain)
        return await self.processor.run_action_extract_slots(CollectingOutputChannel(), tracker)

    def turn_of(self, tracker: Any, turn: int) -> tuple[Any, list[str]]:  # noqa: ANN401
        """The conversation as it stood when the policies answered user message `turn` (from 1),
        and the actions the bot took then, each with the policy and confidence recorded."""
        from rasa.shared.core.constants import ACTION_LISTEN_NAME
        from rasa.shared.core.events import ActionExecuted, UserUttered
        from rasa.shared.core.trackers import DialogueStateTracker

        events = list(tracker.events)
        users = [i for i, event in enumerate(events) if isinstance(event, UserUttered)]
        if not 1 <= turn <= len(users):
            raise ExplainError(f"conversation {tracker.sender_id!r} has {len(users)} customer message(s); "
                               f"pass --turn 1 to {len(users)}")
        end = users[turn - 1] + 1
        while end < len(events) and not isinstance(events[end], ActionExecuted):  # slots NLU set
            end += 1
        recorded = []
        for event in events[end:]:
            if isinstance(event, UserUttered) or (isinstance(event, ActionExecuted)
                                                  and event.action_name == ACTION_LISTEN_NAME):
                break
            if isinstance(event, ActionExecuted):
                recorded.append(f"{event.action_name} ({event.policy or '-'}, {event.confidence or 0:.2f})")
        return DialogueStateTracker.from_events(tracker.sender_id, events[:end], slots=self.domain.slots), recorded

    def policy_scores(self, tracker: Any) -> tuple[list[PolicyScore], Any, dict[str, Any] | None]:  # noqa: ANN401
        """Every policy's best action and confidence for `tracker`, the ensemble's choice, and the
        answer choice's decision where the policy that made it lost (it let a rule's template stand)."""
        from rasa.engine.constants import PLACEHOLDER_TRACKER

        metadata = self.processor.model_metadata
        policies = {name: node.uses.__name__ for name, node in metadata.predict_schema.nodes.items()
                    if node.fn == "predict_action_probabilities"}
        results = self.processor.graph_runner.run(inputs={PLACEHOLDER_TRACKER: tracker},
                                                  targets=[*policies, metadata.core_target])
        chosen = results[metadata.core_target]
        names = self.domain.action_names_or_texts
        scores, overruled = [], None
        for node, policy in policies.items():
            prediction = results[node]
            best = prediction.max_confidence
            scores.append(PolicyScore(policy, names[prediction.max_confidence_index] if best > 0 else None,
                                      round(float(best), 4), policy == chosen.policy_name))
            if policy != chosen.policy_name:
                overruled = overruled or (prediction.action_metadata or {}).get("answer_choice")
        return scores, chosen, overruled

    def _generative_policy(self) -> Any:  # noqa: ANN401 - GenerativeResponsePolicy | None
        from components.policies.generative_response import GenerativeResponsePolicy

        return next(iter(loaded_components(self.processor, GenerativeResponsePolicy).values()), None)

    # ---- generated replies ---------------------------------------------------------------------

    def _evidence(self, policy: Any, text: str, count: int = 3) -> list[Evidence]:  # noqa: ANN401
        """The corpus pairs whose questions are nearest `text` (TF-IDF over character n-grams)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        from components.corpus import BuildConfig, corpus_paths, split_corpus

        if self._corpus is None:
            paths = corpus_paths(policy.config.get("corpus") or [])
            pairs = split_corpus(paths, BuildConfig(valid_fraction=0.0, test_fraction=0.0))[0] if paths else []
            pairs = [p for p in pairs if p.answer]
            vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
            self._corpus = (vectorizer, pairs, vectorizer.fit_transform([p.question for p in pairs])) if pairs \
                else (None, [], None)
        vectorizer, pairs, questions = self._corpus
        if not pairs:
            return []
        similarity = (vectorizer.transform([text]) @ questions.T).toarray()[0]
        best = similarity.argsort()[::-1][:count]
        return [Evidence(pairs[i].question, pairs[i].answer, pairs[i].intent, round(float(similarity[i]), 3))
                for i in best]

    def explain_generated(self, tracker: Any, chosen: Any) -> GeneratedReplyExplanation | None:  # noqa: ANN401
        """What the generator makes of the latest message, what it read to make it, and the checks."""
        from components.generator.data import pad
        from components.generator.decoding import decode_with_attention
        from components.replies import drop_blocked, fill_placeholders, limit_length, sentences

        policy = self._generative_policy()
        if policy is None or policy.generator is None:
            return None
        generator, message = policy.generator, tracker.latest_message
        # The policy's own steps, so the explanation cannot drift from what it does.
        source_text = policy._source(message.text, message.intent.get("name"))
        ids = generator.sources([source_text], [policy._context(tracker)])[0]  # with retrieved answers, if any
        source, mask = pad([ids])
        hypothesis, attention = decode_with_attention(generator.model, source.to(generator.device),
                                                      mask.to(generator.device), generator.decoding)
        reply = generator.tokenizer.decode(hypothesis.tokens)
        confidence = float(generator.calibration.probability(hypothesis.mean_log_prob))
        threshold = float(policy.config["threshold"])
        intent, choice = message.intent.get("name"), (chosen.action_metadata or {}).get("answer_choice")
        checks = [] if choice else [  # where the answer choice decided, its check says why (below)
            ReplyCheck("intent", not policy._not_mine(intent), LABELS[
                "check_intent_bad" if policy._not_mine(intent) else "check_intent_ok"].format(intent=intent))]
        checks.append(ReplyCheck("threshold", confidence >= threshold,
                                 LABELS["check_threshold"].format(confidence=confidence, threshold=threshold)))
        unsupported = policy._unsupported_claims(reply, tracker)
        checks.append(ReplyCheck("facts", not unsupported, LABELS["check_facts_bad"].format(
            claims=", ".join(sorted(unsupported))) if unsupported else LABELS["check_facts_ok"]))
        values = {name: value for name, value in tracker.current_slot_values().items() if isinstance(value, str)}
        values.update({e["entity"]: str(e["value"]) for e in message.entities if e.get("value") is not None})
        filled = fill_placeholders(reply, values)
        unblocked = drop_blocked(filled, policy.config.get("blocklist") or [])
        limit = policy.config["max_characters"]
        limited = limit_length(unblocked, limit)
        # a check fails where it drops a sentence (or, the length, cuts one)
        for name, passed in (("placeholders", len(sentences(filled)) == len(sentences(reply))),
                             ("blocklist", len(sentences(unblocked)) == len(sentences(filled))),
                             ("length", len(limited) >= len(unblocked))):
            checks.append(ReplyCheck(name, passed, LABELS[f"check_{name}_{'ok' if passed else 'bad'}"].format(
                limit=limit)))
        if choice:
            checks.append(ReplyCheck("answer choice", choice["kind"] == "generated",
                                     LABELS["check_choice"].format(**choice)))
        sent = ((chosen.action_metadata or {}).get("generated_reply") or "") \
            if chosen.policy_name == type(policy).__name__ else ""
        token = generator.tokenizer.id_to_token
        return GeneratedReplyExplanation(
            architecture=generator.architecture, source=source_text,
            source_tokens=[token(i) or "?" for i in ids], reply=reply,
            reply_tokens=[token(i) or "?" for i in hypothesis.tokens] + (["</s>"] if hypothesis.finished else []),
            attention=[[round(float(w), 4) for w in row] for row in attention.tolist()],
            confidence=round(confidence, 4), threshold=threshold, sent=sent, checks=checks,
            evidence=self._evidence(policy, message.text))

    # ---- whole explanations ----------------------------------------------------------------------

    def _summary(self, action: str, chosen: Any, intent: IntentExplanation,  # noqa: ANN401
                 generated: GeneratedReplyExplanation | None, tracker: Any,
                 overruled: dict[str, Any] | None = None) -> tuple[str, str]:
        """(kind of answer, why) for the winning action; `overruled`, the answer choice's decision
        where another policy won."""
        confidence = float(chosen.max_confidence)
        choice = (chosen.action_metadata or {}).get("answer_choice")
        if action == GENERATED_REPLY_ACTION and choice and choice["kind"] == "retrieved":
            return "retrieved", LABELS["answered_retrieved"].format(**choice)
        if action == GENERATED_REPLY_ACTION:
            threshold = generated.threshold if generated else 0.0
            return "generated", LABELS["answered_generated"].format(confidence=confidence, threshold=threshold)
        if action in FALLBACK_ACTIONS:
            reason = LABELS["fallback_nlu" if intent.intent == UNSURE_INTENT else "fallback_core"].format(
                intent=intent.predicted.intent, confidence=intent.predicted.confidence if intent.intent ==
                UNSURE_INTENT else confidence)
            return "fallback", LABELS["answered_fallback"].format(reason=reason)
        if action in HANDOFF_ACTIONS:
            if choice:
                reason = LABELS["check_choice"].format(**choice)
            elif self._offered_a_person(tracker):
                reason = LABELS["handoff_offered"].format(intent=intent.intent, confidence=intent.confidence)
            elif intent.intent == "human_handoff":
                reason = LABELS["handoff_asked"].format(intent=intent.intent, confidence=intent.confidence)
            else:
                reason = LABELS["handoff_other"].format(action=action, policy=chosen.policy_name,
                                                        confidence=confidence)
            return "handoff", LABELS["answered_handoff"].format(reason=reason)
        if choice and choice.get("understood_as"):  # NLU unsure, or misled by a refusal: a corpus question named it
            return "intent", LABELS["answered_understood"].format(policy=chosen.policy_name, action=action,
                                                                  intent=choice["understood_as"]["intent"],
                                                                  reason=choice["reason"])
        if choice and choice["kind"] in ("not_offered", "delivers_there"):  # a no, or a yes to a place, naming it
            return "intent", LABELS["answered_understood"].format(policy=chosen.policy_name, action=action,
                                                                  intent=intent.intent, reason=choice["reason"])
        if overruled and overruled["kind"] == "template":  # a rule sent it; the answer choice let it stand
            return "intent", LABELS["answered_kept"].format(policy=chosen.policy_name, intent=intent.intent,
                                                            action=action, reason=overruled["reason"])
        return "intent", LABELS["answered_intent"].format(policy=chosen.policy_name, intent=intent.intent,
                                                          action=action)

    @staticmethod
    def _offered_a_person(tracker: Any) -> bool:  # noqa: ANN401
        """Whether the bot's last action before the customer's message offered a person."""
        from rasa.shared.core.constants import ACTION_LISTEN_NAME
        from rasa.shared.core.events import ActionExecuted

        before = tracker.get_last_event_for(ActionExecuted, action_names_to_exclude=[ACTION_LISTEN_NAME])
        return before is not None and before.action_name in HANDOFF_ACTIONS[1:]

    def explain_tracker(self, tracker: Any, recorded: Sequence[str] = (),  # noqa: ANN401
                        conversation_id: str | None = None, turn: int | None = None) -> Explanation:
        """Why the bot answers the latest message of `tracker` as it does."""
        text = tracker.latest_message.text or ""
        intent = self.explain_intent(text)
        scores, chosen, overruled = self.policy_scores(tracker)
        action = self.domain.action_names_or_texts[chosen.max_confidence_index]
        generated = None
        if action == GENERATED_REPLY_ACTION or action in FALLBACK_ACTIONS or (chosen.action_metadata or {}).get(
                "answer_choice"):
            generated = self.explain_generated(tracker, chosen)
        answer, summary = self._summary(action, chosen, intent, generated, tracker, overruled)
        then = ((chosen.action_metadata or {}).get("answer_choice") or {}).get("then")
        if then:  # the answer is followed by the offer of a person (unknown_word_offer)
            summary = f"{summary} {LABELS['then_offer'].format(**then)}"
        return Explanation(message=text, intent=intent, policies=scores, action=action, answer=answer,
                           summary=summary, generated=generated, conversation_id=conversation_id, turn=turn,
                           recorded=list(recorded), model=self.model_name)

    async def explain_message(self, text: str) -> Explanation:
        return self.explain_tracker(await self.tracker_for(text))

    async def explain_turn(self, store: Any, conversation_id: str, turn: int) -> Explanation:  # noqa: ANN401
        tracker = await store.retrieve(conversation_id)
        if tracker is None:
            raise ExplainError(f"conversation {conversation_id!r} is not in the tracker store")
        replay, recorded = self.turn_of(tracker, turn)
        return self.explain_tracker(replay, recorded, conversation_id, turn)

    async def explain_handoff(self, store: Any, conversation_id: str) -> Explanation | None:  # noqa: ANN401
        """The customer message answered by the conversation's last hand-off, explained; None
        when the conversation or its hand-off is not in the tracker store."""
        from rasa.shared.core.events import ActionExecuted, UserUttered

        tracker = await store.retrieve(conversation_id)
        if tracker is None:
            return None
        turn, handoff_turn = 0, None
        for event in tracker.events:
            if isinstance(event, UserUttered):
                turn += 1
            elif isinstance(event, ActionExecuted) and event.action_name in HANDOFF_ACTIONS and turn:
                handoff_turn = turn
        if handoff_turn is None:
            return None
        replay, recorded = self.turn_of(tracker, handoff_turn)
        return self.explain_tracker(replay, recorded, conversation_id, handoff_turn)
