"""GenerativeResponsePolicy: Kefu's response generator answering inside Rasa.

On a user turn the policy decodes a reply and predicts `utter_generated_reply`, whose text
is `{generated_reply}`; the reply travels in the prediction's `optional_events` as a
`SlotSet`, which Rasa applies only when this policy wins, before the response is sent. Rules
and forms keep precedence (lower priority than RulePolicy); below `threshold` the policy
stays silent and the other policies (fallback, hand-off) answer.

With `answer_choice` set, the policy also decides how to answer the intents whose rule sends a
written response (components/answers.py): it lets the template stand, sends a corpus answer
when a corpus question of the same intent is close, asks what the message asks
(`condition_margin`) and its answer says more than the template,
sends the generated reply when the generator is sure of one that passes the facts check,
answers a message NLU is unsure of as the intent of a very close corpus question, asks
a clarifying question (`utter_clarify`) when NLU is torn between two intents, says no with the
intent's own response when the question names something the shop does not offer
(`not_offered`: a way to pay it does not take), or offers a person
(`utter_offer_handoff`) when the question names something the shop's texts never mention, or
is close to no corpus question in meaning (`coverage_similarity`). Its
priority is then above RulePolicy's, so these answers win over the template rule; forms, the
hand-off and feedback flows are never touched.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rasa.core.constants import RULE_POLICY_PRIORITY
from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.graph_components.providers.responses_provider import Responses
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SlotSet, UserUttered
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import InvalidConfigException

from components import places
from components.action_names import GENERATED_REPLY_ACTION
from components.answer_classifier import AnswerClassifier, ClassifierFileError
from components.answers import (
    CLARIFY,
    GENERATED,
    HANDOFF,
    NOT_OFFERED,
    RETRIEVED,
    TEMPLATE,
    AnswerChooser,
    Choice,
    ChoiceSettings,
    CorpusAnswers,
    CorpusPair,
    common_words,
    shop_vocabulary,
    wanted_part,
)
from components.catalogue import LANGUAGE_SLOT, response_variant, variant_language
from components.corpus import BuildConfig, Pair, corpus_paths, file_digest, split_corpus
from components.featurizers.encoder import EncoderError, EncoderSettings, WordEncoder
from components.generator.data import Dialogue
from components.generator.generator import GeneratorFileError, Reply, ResponseGenerator
from components.generator.training import GeneratorConfig, train_generator
from components.replies import FactsFileError, ShopFacts, drop_blocked, fill_placeholders, limit_length
from components.text import DEFAULT_LANGUAGE, LANGUAGES, detect_language, message_language, normalise, written_in

logger = logging.getLogger(__name__)

GENERATED_REPLY_SLOT = "generated_reply"
GENERATOR_FOLDER = "generator"
POLICY_FILE = "policy.json"
ANSWER_CLASSIFIER_FILE = "answer_classifier.pkl"
CLARIFY_RESPONSE, HANDOFF_OFFER_RESPONSE, INTENT_LABELS_RESPONSE = \
    "utter_clarify", "utter_offer_handoff", "utter_intent_labels"
# the offer of a person to a customer who has waited too long: it says sorry for the wait instead
# of "I'm not sure I can answer that"; domains without it get the general offer
OVERDUE_OFFER_RESPONSE = "utter_offer_handoff_overdue"
# the offer of a person after an answer that may not say yes or no to what was asked
# (`unknown_word_offer`); domains without it get the general offer
AFTER_ANSWER_OFFER_RESPONSE = "utter_offer_handoff_after_answer"
NOT_OFFERED_SLOT = "not_offered"  # what the customer asked for that the shop does not offer
DESTINATION_SLOT = "destination"  # a place the shop delivers to, named in the yes to it
UNSURE_INTENT = "nlu_fallback"


@dataclass
class LearntFromData:
    """What training keeps besides the generator; saved in the model as policy.json."""

    # intent -> language -> the text of its first written response
    intent_responses: dict[str, dict[str, str]] = field(default_factory=dict)
    handled_intents: list[str] = field(default_factory=list)  # intents the rules and stories answer
    facts: list[str] | None = None  # the shop's fact sentences, when `facts` names a file
    trained_generator: bool = False
    # for the answer choice: intent -> language -> its name on a clarifying question's button
    intent_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # intent -> the written response its rule sends: the intents the choice may answer otherwise,
    # and the response the policy sends for a message NLU was unsure of
    template_actions: dict[str, str] = field(default_factory=dict)
    vocabulary: list[str] = field(default_factory=list)  # content words of the shop's own texts
    # the corpus's single-turn pairs: question, answer, intent, lang (answers the choice may send)
    corpus_pairs: list[dict[str, str]] = field(default_factory=list)
    # the NLU examples of the intents without a written response that the corpus answers, as
    # question, answer (the intent's corpus answer in that language), intent, lang: with their
    # corpus questions, what the generator learnt those intents from
    example_pairs: list[dict[str, str]] = field(default_factory=list)
    # intent -> the word forms common in its NLU examples: never part of a corpus question's condition
    intent_words: dict[str, list[str]] = field(default_factory=dict)
    # folded place name -> ISO country code (components/places.py), for not_offered's delivers_to
    places: dict[str, str] = field(default_factory=dict)


def _nlu_examples(patterns: str | list[str]) -> dict[str, list[str]]:
    """Example texts per intent from Rasa NLU files (read here, so `rasa train core` has them too)."""
    from rasa.shared.nlu.training_data.loading import load_data

    examples: dict[str, list[str]] = {}
    for path in corpus_paths(patterns):
        for message in load_data(str(path)).intent_examples:
            examples.setdefault(message.get("intent"), []).append(message.get("text"))
    return examples


def _intent_responses(trackers: Iterable[TrackerWithCachedStates],
                      responses: Responses) -> dict[str, dict[str, str]]:
    """The first written response each intent leads to in the rules and stories, in each
    language it has a variant for."""
    found: dict[str, dict[str, str]] = {}
    for tracker in trackers:
        intent = None
        for event in tracker.events:
            if isinstance(event, UserUttered):
                intent = event.intent_name
            elif isinstance(event, ActionExecuted) and event.action_name != ACTION_LISTEN_NAME and intent:
                variants = responses.get(event.action_name, []) if event.action_name else []
                texts: dict[str, str] = {}
                for variant in variants:
                    if variant.get("text") and "{" not in variant["text"]:
                        texts.setdefault(variant_language(variant) or DEFAULT_LANGUAGE, variant["text"])
                if texts:
                    found.setdefault(intent, texts)
                intent = None
    return found


def _in_language(texts: dict[str, str], lang: str) -> str | None:
    """The text for `lang`, else the default language's."""
    return texts.get(lang) or texts.get(DEFAULT_LANGUAGE)


def _corpus_answers(pairs: Iterable[tuple[str | None, str, str | None]]) -> dict[tuple[str, str], str]:
    """The most frequent answer for each intent and language in the corpus, from (intent,
    language, answer) triples."""
    counts: dict[tuple[str, str], Counter] = {}
    for intent, lang, answer in pairs:
        if intent and answer:
            counts.setdefault((intent, lang), Counter())[answer] += 1
    return {key: answers.most_common(1)[0][0] for key, answers in counts.items()}


def _handled_intents(trackers: Iterable[TrackerWithCachedStates]) -> list[str]:
    """Intents some rule or story reacts to."""
    return sorted({e.intent_name for t in trackers for e in t.events if isinstance(e, UserUttered) and e.intent_name})


def _story_turns(trackers: Iterable[TrackerWithCachedStates]) -> list[Dialogue]:
    """End-to-end turns: a user text followed by a bot text."""
    turns = []
    for tracker in trackers:
        text = None
        for event in tracker.events:
            if isinstance(event, UserUttered):
                text = event.text
            elif isinstance(event, ActionExecuted) and event.action_text and text:
                turns.append(Dialogue(text, event.action_text))
                text = None
    return turns


def _template_actions(trackers: Iterable[TrackerWithCachedStates], responses: Responses) -> dict[str, str]:
    """Intent -> the written response some rule answers it with straight after the message."""
    found: dict[str, str] = {}
    for tracker in (t for t in trackers if t.is_rule_tracker):
        events = [e for e in tracker.events if isinstance(e, UserUttered | ActionExecuted)]
        for event, following in zip(events, events[1:], strict=False):
            if (isinstance(event, UserUttered) and event.intent_name and isinstance(following, ActionExecuted)
                    and following.action_name in responses.data):
                found.setdefault(event.intent_name, following.action_name)
    return dict(sorted(found.items()))


def _intent_labels(responses: Responses) -> dict[str, dict[str, str]]:
    """Intent -> language -> label, from the `utter_intent_labels` response's custom payloads."""
    labels: dict[str, dict[str, str]] = {}
    for lang in LANGUAGES if INTENT_LABELS_RESPONSE in responses.data else ():
        custom = response_variant(responses.data, INTENT_LABELS_RESPONSE, lang).get("custom") or {}
        for intent, label in (custom.get("labels") or {}).items():
            labels.setdefault(intent, {})[lang] = str(label)
    return labels


def _generator_only(config: dict[str, Any], learnt: LearntFromData, intents: Iterable[str]) -> list[str]:
    """Of `intents`, those only the generator answers: no rule sends them a written response, no
    rule or story reacts to them, and the policy neither skips nor abstains from them."""
    excluded = (set(learnt.template_actions) | set(learnt.handled_intents)
                | set(config.get("skip_intents") or []) | set(config.get("abstain_intents") or []))
    return [intent for intent in intents if intent not in excluded]


def _check_not_offered(settings: ChoiceSettings, domain: Domain) -> None:
    """`not_offered` needs its responses, and the slots they name the asked-for thing with."""
    named = {entry["response"] for entry in settings.not_offered.values()} | settings.served_responses
    missing = sorted(named - set(domain.responses))
    if missing:
        raise InvalidConfigException(f"GenerativeResponsePolicy: answer_choice: not_offered names "
                                     f"{', '.join(missing)}, which the domain has no response for")
    slots = {slot.name for slot in domain.slots}
    for slot, needed, what in [(NOT_OFFERED_SLOT, bool(settings.not_offered), "what was asked for"),
                               (DESTINATION_SLOT, bool(settings.served_responses), "the place")]:
        if needed and slot not in slots:
            raise InvalidConfigException(f"GenerativeResponsePolicy: answer_choice: not_offered needs a text slot "
                                         f"`{slot}` in the domain (its responses name {what})")


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True)
class GenerativeResponsePolicy(Policy):
    """Answers the long tail with generated text; see the module docstring."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        generator = GeneratorConfig()
        return {
            # Below RulePolicy (4) and MemoizationPolicy (3), so rules, forms and memorised
            # stories win; above TEDPolicy (1), so a tie goes to the generated reply.
            "priority": 2,
            # Question-answer files run through the corpus pipeline, e.g. data/corpus/*.jsonl;
            # their contents are part of the fingerprint.
            "corpus": [],
            # A generator folder saved by `kefu generator train` (for example under torchrun on
            # a large corpus): served as it is, and `rasa train` trains none.
            "generator_path": None,
            # Corpus intents left out of the generator's training: out-of-scope questions
            # belong to fallback and hand-off, not to a generated "I can't help".
            "skip_intents": ["out_of_scope"],
            # Share of the pairs held out to stop training early and to calibrate the
            # confidence; 0 watches the training pairs instead (for very small corpora).
            "valid_fraction": 0.1,
            # Rasa NLU files whose examples of intents only the corpus answers are paired with
            # the corpus answer in their language (read by the policy, so `rasa train core`
            # works).
            "nlu": ["data/nlu*.yml"],
            # Generator settings (see the README): seq2seq | transformer and their sizes.
            "architecture": generator.architecture,
            "model": {},
            "tokenizer": asdict(generator.tokenizer),
            "training": {**asdict(generator.training), "epochs": 30},
            "decoding": {**asdict(generator.decoding), "strategy": "greedy"},
            # Put the message's intent before the question ("warranty: is it covered?"), so
            # the generator learns what NLU already knows; NLU tells paraphrases apart better
            # than a generator trained on a few hundred pairs.
            "condition_on_intent": True,
            # Earlier turns (user and bot) given to the generator with the question.
            "context_turns": generator.inputs.context_turns,
            # Retrieval-augmented generation: the answers of the `k` corpus questions nearest the
            # message (TF-IDF) follow it in what the generator reads, each cut to
            # `max_evidence_tokens`; the pairs are saved inside the model. 0: the message alone.
            # Pair it with `model: {copy_attention: true}` (seq2seq), so replies can copy from them.
            "retrieval": {"k": generator.inputs.retrieval_k,
                          "max_evidence_tokens": generator.inputs.max_evidence_tokens},
            # Calibrated confidence below which the policy stays silent. RulePolicy's
            # `core_fallback_threshold` (0.3) is what fallback scores, so a threshold above
            # it lets fallback or hand-off answer whenever the generator is unsure.
            "threshold": 0.5,
            # Intents the generator never answers, besides those rules and stories react to
            # (which are theirs): a message NLU is unsure of goes to fallback, which asks the
            # customer to rephrase, rather than to a guess.
            "abstain_intents": ["nlu_fallback"],
            # Words or phrases never sent: a sentence containing one is dropped.
            "blocklist": [],
            # Longest reply sent, in characters (whole sentences are kept).
            "max_characters": 600,
            # The shop's facts; a reply stating another number, duration or price is
            # replaced by the written response of the message's intent.
            "facts": "data/shop_facts.yml",
            # Where the generator runs: auto (cuda, then mps, then cpu) or a device name.
            "device": "auto",
            # Run after each generated reply, when the domain has it: the custom action that
            # may ask "Was this helpful?" (actions/feedback.py); null never asks.
            "feedback_action": "action_ask_feedback",
            # null: answer only what no rule answers. A mapping: also choose how to answer the
            # intents whose rule sends a written response (components/answers.py), with these
            # settings, any of which may be left out:
            #   generated_threshold: calibrated confidence from which the generated reply
            #     replaces the template (it must also pass the facts check);
            #   template_overlap: token F1 with the template from which a generated reply (or a
            #     corpus answer) says what the template says, so the template is sent;
            #   corpus_similarity: similarity (TF-IDF, 0-1) from which the nearest corpus
            #     question's answer is sent, when it is of the intent NLU names and says more
            #     than the template; null never sends corpus answers;
            #   corpus_encoder, corpus_encoder_languages, corpus_encoder_similarity: a local
            #     sentence encoder folder (as the encoder featurizer's model_path), the languages
            #     it reads ([en]) and the cosine from which their corpus questions count as close:
            #     those languages' questions are compared in meaning instead of in characters;
            #   coverage_similarity: with a corpus_encoder, the cosine below which a message in its
            #     languages is nearest no corpus question: the shop's texts do not cover it, and a
            #     person is offered (also for intents the generator answers); null never offers;
            #   intent_question_similarity, intent_question_encoder_similarity: for an intent without
            #     a written response, the similarity in characters (TF-IDF) and the cosine in meaning
            #     (the corpus_encoder's languages) from which a message counts as one of its
            #     questions (its corpus questions and NLU examples, what the generator learnt its
            #     answer from); a message further from all of them is offered a person; null never;
            #   unsure_corpus_similarity, unsure_corpus_encoder_similarity: when NLU is unsure, the
            #     similarity in characters (TF-IDF) and the cosine in meaning (the corpus_encoder's
            #     languages) from which the nearest corpus question's intent is taken as the
            #     message's, and the message answered as that intent (its corpus answer, generated
            #     reply or written response); null never does;
            #   clarify_min_confidence, clarify_runner_up: when NLU is unsure, the two likeliest
            #     intents together and the second alone must reach these for a clarifying question;
            #   condition_margin: a corpus answer (or a generated reply repeating one) is sent only
            #     when its question, without the words the message lacks that are rare in the
            #     intent's NLU examples (its condition: worn, a fee, twice), is not more than this
            #     much closer to the message than the whole question; else the template; null
            #     never checks;
            #   corpus_classifier_ratio: for the languages compared in characters (no corpus_encoder
            #     reads them), a classifier over each intent's corpus answers and its written
            #     response (components/answer_classifier.py) picks the corpus answer instead of the
            #     nearest question: sent when at least this many times as likely as the written
            #     response; null: the nearest question in characters (corpus_similarity);
            #   asked_details (true): a message asking for an amount (a fee, a price, a limit, a
            #     duration) or a tax gets the offer of a person when the answer chosen (written
            #     response, corpus answer or generated reply) states none;
            #   waited_too_long (true): a customer who has waited longer than the longest time the
            #     answer chosen states, for something that has not happened yet ("three weeks ago
            #     and still nothing"), gets the offer of a person;
            #   contrast (true): a message that sets what the customer wants against what they do
            #     not ("I don't want a voucher, just my money back") is answered as the
            #     intent of a corpus question close to the wanted part, by the unsure_corpus_*
            #     similarities, where that differs from NLU's; when NLU is unsure, only the
            #     wanted part is compared with the corpus questions;
            #   closed_intents: intents whose response is a complete list; a question naming a word
            #     the shop's texts never use gets the offer of a person instead;
            #   unknown_word_offer (false): a yes-or-no question naming, in a clause that asks, a
            #     word the shop's texts never use (not a place, nor in an entity NLU found) gets
            #     its answer, then the offer of a person (utter_offer_handoff_after_answer, else
            #     utter_offer_handoff): the answer may not say yes or no to it ("do you have a
            #     showroom?");
            #   not_offered: intent -> {response, names}: a question of that intent naming one of
            #     `names` (what the shop does not offer, e.g. ways to pay it does not take) gets
            #     `response`, with the name in the `not_offered` slot, before anything else;
            #     or intent -> {response, delivers_to}: the same for a question sending something
            #     to a place (a country, a US state or Canadian province, a city of 500,000 people,
            #     in English or Chinese) outside the countries `delivers_to` lists (ISO codes); with
            #     `served_response`, a question sending it to a place inside them gets that response
            #     first (a yes naming the place, in the `destination` slot), then its answer;
            #   keep_template_intents: intents that always get their written response.
            # The policy's priority is then raised above RulePolicy's.
            "answer_choice": None,
        }

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """Changed corpus, NLU or facts files retrain the policy; so does a new way of reading
        place names (components/places.py) where `delivers_to` needs them."""
        paths = corpus_paths(config.get("corpus") or []) + corpus_paths(config.get("nlu") or [])
        not_offered = (config.get("answer_choice") or {}).get("not_offered") or {}
        if any(isinstance(entry, dict) and "delivers_to" in entry for entry in not_offered.values()):
            paths.append(Path(places.__file__))
        if config.get("generator_path") and Path(config["generator_path"]).is_dir():
            paths += sorted(p for p in Path(config["generator_path"]).iterdir() if p.is_file())
        if config.get("facts") and Path(config["facts"]).is_file():
            paths.append(Path(config["facts"]))
        return file_digest(paths) if paths else None

    def __init__(self, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
                 execution_context: ExecutionContext, generator: ResponseGenerator | None = None,
                 learnt: LearntFromData | None = None, answer_classifier: AnswerClassifier | None = None) -> None:
        super().__init__(config, model_storage, resource, execution_context)
        self.generator = generator
        self.learnt = learnt or LearntFromData()
        # the facts file is read when training, then kept inside the model
        self.facts = ShopFacts(self.learnt.facts) if self.learnt.facts is not None else None
        self.model_id = f"{resource.name}-{resource.output_fingerprint}"
        self.generator_config = self._generator_config(config)
        self.answer_classifier = answer_classifier
        self.chooser = self._chooser(config, self.learnt, answer_classifier)
        self._usual_answers: dict[tuple[str, str], str] | None = None  # from learnt.corpus_pairs, when first needed
        # the latest message's (source, context) and the generator's reply to it
        self._last_reply: tuple[tuple[str, tuple[str, ...]], Reply] | None = None
        if self.chooser:
            self.priority = max(self.priority, RULE_POLICY_PRIORITY + 1)

    @staticmethod
    def _chooser(config: dict[str, Any], learnt: LearntFromData,
                 classifier: AnswerClassifier | None = None) -> AnswerChooser | None:
        if config.get("answer_choice") is None:
            return None
        try:
            settings = ChoiceSettings(**config["answer_choice"])
        except (TypeError, ValueError) as error:
            raise InvalidConfigException(f"GenerativeResponsePolicy: answer_choice: {error}") from error
        pairs = [CorpusPair(**pair) for pair in learnt.corpus_pairs]
        corpus = intent_questions = None
        if pairs:
            encoder = GenerativeResponsePolicy._corpus_encoder(settings)
            encode = encoder.sentence_vectors if encoder else None
            corpus = CorpusAnswers(pairs, encode, settings.corpus_encoder_languages)
            if (settings.intent_question_similarity, settings.intent_question_encoder_similarity) != (None, None):
                answered_alone = _generator_only(config, learnt, {pair.intent for pair in pairs})
                intent_questions = CorpusAnswers([p for p in pairs if p.intent in answered_alone]
                                                 + [CorpusPair(**pair) for pair in learnt.example_pairs],
                                                 encode, settings.corpus_encoder_languages)
        return AnswerChooser(learnt.vocabulary, settings, corpus, learnt.intent_words, classifier, learnt.places,
                             intent_questions)

    @staticmethod
    def _corpus_encoder(settings: ChoiceSettings) -> WordEncoder | None:
        if not settings.corpus_encoder:
            return None
        try:
            return WordEncoder(Path(settings.corpus_encoder), EncoderSettings(runtime="onnx"))
        except EncoderError as error:
            raise InvalidConfigException(f"GenerativeResponsePolicy: answer_choice: corpus_encoder: {error}") from error

    @staticmethod
    def _generator_config(config: dict[str, Any]) -> GeneratorConfig:
        retrieval = config.get("retrieval") or {}
        unknown = set(retrieval) - {"k", "max_evidence_tokens"} if isinstance(retrieval, dict) else {"(not a mapping)"}
        if unknown:
            raise InvalidConfigException(f"GenerativeResponsePolicy: retrieval takes k and max_evidence_tokens, "
                                         f"not {', '.join(sorted(unknown))}")
        inputs = {"context_turns": config["context_turns"], "retrieval_k": retrieval.get("k", 0)}
        if "max_evidence_tokens" in retrieval:
            inputs["max_evidence_tokens"] = retrieval["max_evidence_tokens"]
        try:
            return GeneratorConfig.from_dict({
                "architecture": config["architecture"], "model": config["model"], "tokenizer": config["tokenizer"],
                "training": {**config["training"], "device": config["device"]}, "decoding": config["decoding"],
                "inputs": inputs}, "GenerativeResponsePolicy")
        except (TypeError, ValueError) as error:
            raise InvalidConfigException(str(error)) from error

    def _source(self, text: str, intent: str | None) -> str:
        """What the generator reads for a message: its text, after its intent if so configured."""
        return f"{intent}: {text}" if self.config["condition_on_intent"] and intent else text

    def _training_dialogues(self, training_trackers: list[TrackerWithCachedStates],
                            responses: Responses) -> tuple[list[Dialogue], list[Dialogue]]:
        train: list[Dialogue] = []
        valid: list[Dialogue] = []
        pairs: list[Pair] = []
        paths = corpus_paths(self.config.get("corpus") or [])
        skipped = set(self.config.get("skip_intents") or [])
        if paths:
            split = BuildConfig(valid_fraction=self.config["valid_fraction"], test_fraction=0.0)
            pairs, splits, _ = split_corpus(paths, split)
            answered = {name: [pairs[i] for i in indices if pairs[i].answer and pairs[i].intent not in skipped]
                        for name, indices in splits.items()}
            train += [Dialogue(self._source(p.question, p.intent), p.answer, tuple(p.context), p.intent, p.lang)
                      for p in answered["train"]]
            valid += [Dialogue(self._source(p.question, p.intent), p.answer, tuple(p.context), p.intent, p.lang)
                      for p in answered["valid"]]
        corpus_answers = _corpus_answers((p.intent, p.lang or detect_language(p.question), p.answer)
                                         for p in pairs if p.intent not in skipped)
        corpus_questions = {normalise(p.question) for p in pairs}
        for intent, texts in _nlu_examples(self.config.get("nlu") or []).items():
            # Intents the rules and stories answer get their written response, never a generated
            # one, so their examples would only spend the training budget.
            if intent not in self.learnt.handled_intents:
                # An intent only the corpus answers: its NLU examples are more ways to ask for
                # that answer. Corpus questions stay where the split put them (valid included).
                for text in texts:
                    lang = detect_language(text)
                    if (intent, lang) in corpus_answers and normalise(text) not in corpus_questions:
                        train.append(Dialogue(self._source(text, intent), corpus_answers[intent, lang],
                                              intent=intent, lang=lang))
        train += _story_turns(training_trackers)
        if not valid and self.config["valid_fraction"] > 0:  # no corpus: hold out every tenth derived pair
            valid, train = train[::10], [d for i, d in enumerate(train) if i % 10]
        return train, valid or list(train)

    def train(self, training_trackers: list[TrackerWithCachedStates], domain: Domain,
              responses: Responses, **kwargs: Any) -> Resource:
        self._last_reply = None  # replies of the generator about to be replaced
        try:
            self.facts = ShopFacts.load(self.config["facts"]) if self.config.get("facts") else None
        except FactsFileError as error:
            raise InvalidConfigException(f"GenerativeResponsePolicy: {error}") from error
        self.learnt = LearntFromData(_intent_responses(training_trackers, responses),
                                     _handled_intents(training_trackers),
                                     self.facts.statements if self.facts else None)
        if self.chooser:
            _check_not_offered(self.chooser.settings, domain)
            self.learnt.intent_labels = _intent_labels(responses)
            self.learnt.template_actions = _template_actions(training_trackers, responses)
            pairs = self._whole_corpus()
            examples = _nlu_examples(self.config.get("nlu") or [])
            self.learnt.vocabulary = self._shop_vocabulary(responses, pairs, examples)
            self.learnt.intent_words = {intent: common_words(texts) for intent, texts in examples.items()}
            self.learnt.corpus_pairs = self._single_turn_pairs(pairs)
            self.learnt.example_pairs = self._example_pairs(examples)
            home = self.chooser.settings.home_countries
            self.learnt.places = places.world_places(home) if home else {}
            self._usual_answers = None
            self.answer_classifier = self._answer_classifier(self.chooser.settings, examples)
            self.chooser = self._chooser(self.config, self.learnt, self.answer_classifier)
        if self.config.get("generator_path"):
            try:
                self.generator = ResponseGenerator.load(self.config["generator_path"], device=self.config["device"])
            except GeneratorFileError as error:
                raise InvalidConfigException(f"GenerativeResponsePolicy: generator_path: {error}") from error
            self.persist()
            return self._resource
        train, valid = self._training_dialogues(training_trackers, responses)
        if not train or not valid:
            logger.warning("GenerativeResponsePolicy: no question-answer pairs to train on; it will stay silent")
            self.generator = None
        else:
            previous = self.generator if self.finetune_mode else None
            self.generator = train_generator(train, valid, self.generator_config, init_from=previous).generator
        self.persist()
        return self._resource

    def _answer_classifier(self, settings: ChoiceSettings, examples: dict[str, list[str]]) -> AnswerClassifier | None:
        """With `corpus_classifier_ratio`: which corpus answer a message asks for, learnt for the
        languages compared in characters (those no `corpus_encoder` reads)."""
        if settings.corpus_classifier_ratio is None:
            return None
        pairs = [(p["question"], p["answer"], p["intent"], p["lang"]) for p in self.learnt.corpus_pairs]
        written = {(intent, lang): text for intent, texts in self.learnt.intent_responses.items()
                   for lang, text in texts.items()}
        languages = set(LANGUAGES) - (set(settings.corpus_encoder_languages) if settings.corpus_encoder else set())
        return AnswerClassifier.fit(pairs, {intent: [(t, detect_language(t)) for t in texts]
                                            for intent, texts in examples.items()},
                                    written, languages, settings.template_overlap)

    def _whole_corpus(self) -> list[Pair]:
        """Every corpus pair, cleaned by the corpus pipeline, unsplit."""
        paths = corpus_paths(self.config.get("corpus") or [])
        return split_corpus(paths, BuildConfig(valid_fraction=0.0, test_fraction=0.0))[0] if paths else []

    def _shop_vocabulary(self, responses: Responses, pairs: list[Pair],
                         examples: dict[str, list[str]]) -> list[str]:
        """The words of the NLU examples, corpus, responses and facts, out-of-scope ones aside."""
        skipped = set(self.config.get("skip_intents") or [])
        texts = [text for intent, texts in examples.items() if intent not in skipped for text in texts]
        texts += [text for p in pairs if p.intent not in skipped for text in (p.question, p.answer or "")]
        texts += [v["text"] for variants in responses.data.values() for v in variants if v.get("text")]
        texts += self.learnt.facts or []
        return shop_vocabulary(texts)

    def _example_pairs(self, examples: dict[str, list[str]]) -> list[dict[str, str]]:
        """The NLU examples of the intents without a written response that the corpus answers,
        each with that answer in its language (as the generator learns them)."""
        answers = _corpus_answers((p["intent"], p["lang"], p["answer"]) for p in self.learnt.corpus_pairs)
        pairs = []
        for intent in _generator_only(self.config, self.learnt, examples):
            for text in examples[intent]:
                lang = detect_language(text)
                if (intent, lang) in answers:
                    pairs.append({"question": text, "answer": answers[intent, lang], "intent": intent, "lang": lang})
        return pairs

    @staticmethod
    def _single_turn_pairs(pairs: list[Pair]) -> list[dict[str, str]]:
        """The corpus pairs that answer a question on their own (no context), with their intent."""
        return [{"question": p.question, "answer": p.answer, "intent": p.intent,
                 "lang": p.lang or detect_language(p.question)}
                for p in pairs if p.answer and p.intent and not p.context]

    def persist(self) -> None:
        with self._model_storage.write_to(self._resource) as folder:
            if self.generator is not None:
                self.generator.save(Path(folder) / GENERATOR_FOLDER)
            self.learnt.trained_generator = self.generator is not None
            (Path(folder) / POLICY_FILE).write_text(json.dumps(asdict(self.learnt), ensure_ascii=False, indent=2),
                                                    encoding="utf-8")
            if self.answer_classifier is not None:
                self.answer_classifier.save(Path(folder) / ANSWER_CLASSIFIER_FILE)

    @classmethod
    def load(cls, config: dict[str, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> GenerativeResponsePolicy:
        with model_storage.read_from(resource) as folder:
            folder = Path(folder)
            try:
                saved = json.loads((folder / POLICY_FILE).read_text(encoding="utf-8"))
                saved.pop("template_intents", None)  # models of 2026-12-05/06 kept template_actions' keys too
                learnt = LearntFromData(**saved)
            except (OSError, ValueError, TypeError, AttributeError) as error:
                raise InvalidConfigException(f"GenerativeResponsePolicy: {POLICY_FILE} in the trained model is "
                                             f"missing or damaged ({error}); retrain with `rasa train`") from error
            generator = None
            if learnt.trained_generator:
                try:
                    generator = ResponseGenerator.load(folder / GENERATOR_FOLDER, device=config.get("device", "auto"))
                except GeneratorFileError as error:
                    raise InvalidConfigException(f"GenerativeResponsePolicy: the trained model is damaged: {error}; "
                                                 "retrain with `rasa train`") from error
            classifier = None
            if (folder / ANSWER_CLASSIFIER_FILE).exists():
                try:
                    classifier = AnswerClassifier.load(folder / ANSWER_CLASSIFIER_FILE)
                except ClassifierFileError as error:
                    raise InvalidConfigException(f"GenerativeResponsePolicy: the trained model is damaged: {error}; "
                                                 "retrain with `rasa train`") from error
        return cls(config, model_storage, resource, execution_context, generator, learnt, classifier)

    def _context(self, tracker: DialogueStateTracker) -> list[str]:
        """The texts of the turns before the latest user message, oldest first (the same after
        the bot's first answer to it, such as the yes to a place)."""
        if not self.config["context_turns"]:
            return []
        events = list(tracker.events)
        latest = max((i for i, e in enumerate(events) if isinstance(e, UserUttered)), default=len(events))
        texts = [e.text for e in events[:latest] if isinstance(e, UserUttered | BotUttered) and e.text]
        return texts[-self.config["context_turns"]:]

    def _reply(self, text: str, intent: str | None, tracker: DialogueStateTracker) -> Reply:
        """The generator's reply to the customer's message; the message answered in two actions
        (the yes to a place, then the answer) is decoded once."""
        assert self.generator is not None
        key = (self._source(text, intent), tuple(self._context(tracker)))
        if self._last_reply is None or self._last_reply[0] != key:
            self._last_reply = key, self.generator.reply(*key)
        return self._last_reply[1]

    def _unsupported_claims(self, reply: str, tracker: DialogueStateTracker) -> set[str]:
        """Numbers, durations and prices in `reply` that neither the facts nor the customer state."""
        said = " ".join([tracker.latest_message.text or "", *self._context(tracker)])
        return self.facts.unsupported_claims(reply, said) if self.facts else set()

    def _finish(self, reply: str, tracker: DialogueStateTracker) -> str:
        """The reply as sent: facts checked, placeholders filled, blocked phrases and excess dropped."""
        message = tracker.latest_message
        unsupported = self._unsupported_claims(reply, tracker)
        if unsupported:
            template = _in_language(self.learnt.intent_responses.get(message.intent.get("name", ""), {}),
                                    detect_language(message.text or ""))
            logger.info("GenerativeResponsePolicy: %r states %s, which the shop facts do not; sending %s instead",
                        reply, sorted(unsupported), "the intent's written response" if template else "nothing")
            reply = template or ""
        values = {name: value for name, value in tracker.current_slot_values().items() if isinstance(value, str)}
        values.update({e["entity"]: str(e["value"]) for e in message.entities if e.get("value") is not None})
        reply = fill_placeholders(reply, values)
        reply = drop_blocked(reply, self.config.get("blocklist") or [])
        return limit_length(reply, self.config["max_characters"])

    def _not_mine(self, intent: str | None) -> bool:
        """Intents that rules or stories react to are theirs; `abstain_intents` go to fallback."""
        return intent in self.learnt.handled_intents or intent in (self.config.get("abstain_intents") or [])

    def predict_action_probabilities(self, tracker: DialogueStateTracker, domain: Domain,
                                     rule_only_data: dict[str, Any] | None = None,
                                     **kwargs: Any) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        if GENERATED_REPLY_ACTION not in domain.action_names_or_texts:
            return self._prediction(probabilities)
        feedback_action = self.config.get("feedback_action")
        if feedback_action not in domain.action_names_or_texts:
            feedback_action = None
        then = self._offer_after_answer(tracker)
        if then:
            probabilities[domain.index_for_action(then)] = 1.0
            return self._prediction(probabilities)
        if tracker.latest_action_name == GENERATED_REPLY_ACTION:
            # after its reply the bot may ask for feedback, then waits for the customer
            probabilities[domain.index_for_action(feedback_action or ACTION_LISTEN_NAME)] = 1.0
            return self._prediction(probabilities)
        if feedback_action and tracker.latest_action_name == feedback_action:
            probabilities[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0
            return self._prediction(probabilities)
        message = tracker.latest_message
        text = (message.text or "").strip() if message else ""
        intent = message.intent.get("name") if message else None
        if self.chooser and self._own_last_action(tracker):
            if tracker.latest_action_name in self.chooser.settings.served_responses and text and intent:
                # the yes to the place goes before the answer itself
                return self._chosen_answer(tracker, domain, text, intent, place_confirmed=True)
            # the customer answers: no rule or story continues what the answer choice sent (a
            # question back, an offer of a person, a no of its own, a template for a message NLU
            # was unsure of), and the fallback would
            probabilities[domain.index_for_action(ACTION_LISTEN_NAME)] = 1.0
            return self._prediction(probabilities)
        if tracker.latest_action_name != ACTION_LISTEN_NAME or not text or text.startswith("/"):
            return self._prediction(probabilities)
        if self._choice_applies(tracker, intent, domain):
            return self._chosen_answer(tracker, domain, text, intent)
        if self.generator is None or self._not_mine(intent):
            return self._prediction(probabilities)
        chooser = self.chooser if self._may_offer_handoff(tracker, domain) else None
        lang = self._language(tracker, text)
        if chooser and intent and self._wants_another_intent(text, lang, intent, domain):
            # "don't delete my account, I just want a new email": answered as what it wants
            return self._chosen_answer(tracker, domain, text, intent)
        uncovered = (chooser.uncovered(text, lang) or chooser.outside_intent(text, lang, intent or "")) \
            if chooser else None
        if uncovered:
            return self._handoff_offer(domain, uncovered)
        reply = self._reply(text, intent, tracker)
        answer, metadata = reply.text, None
        usual = self._usual_corpus_answer(intent, lang) if not written_in(reply.text, lang) else None
        if usual:
            # a message mixing two languages may get a reply in the one the conversation is not in
            answer, metadata = usual, {"generator": "corpus", "answer_choice": {
                "kind": RETRIEVED, "reason": f"the generated reply is not in the customer's language ({lang}); "
                                             f"{intent}'s most frequent corpus answer in it"}}
        sent = self._finish(answer, tracker) if reply.confidence >= self.config["threshold"] else ""
        if not sent:
            return self._prediction(probabilities)
        unanswered = chooser.unanswered(text, lang, sent) if chooser else None
        if unanswered:
            return self._handoff_offer(domain, unanswered)
        probabilities[domain.index_for_action(GENERATED_REPLY_ACTION)] = reply.confidence
        then = self._then_offer(chooser, tracker, text, lang, domain) if chooser else None
        if then:
            metadata = {**(metadata or {}), "answer_choice": {
                **(metadata or {}).get("answer_choice", {"kind": GENERATED, "reason": "the generator answers"}),
                "then": then}}
        return self._generated_prediction(probabilities, sent, reply.confidence, metadata)

    def _wants_another_intent(self, text: str, lang: str, intent: str, domain: Domain) -> bool:
        """Whether the part of `text` the customer wants (`contrast`) is closer to a corpus question
        of another intent than NLU's, which read what they do not want."""
        assert self.chooser is not None
        wanted = wanted_part(text, lang) if self.chooser.settings.contrast else None
        return bool(wanted and self.chooser.wanted_intent(wanted, lang, intent, self._understandable_intents(domain)))

    def _then_offer(self, chooser: AnswerChooser, tracker: DialogueStateTracker, text: str, lang: str,
                    domain: Domain) -> dict[str, str] | None:
        """The offer of a person to send after the answer, with why (`unknown_word_offer`), or None."""
        entities = [e["value"] for e in tracker.latest_message.entities if isinstance(e.get("value"), str)]
        offer = chooser.unknown_topic(text, lang, entities)
        if offer is None:
            return None
        response = AFTER_ANSWER_OFFER_RESPONSE if AFTER_ANSWER_OFFER_RESPONSE in domain.responses \
            else HANDOFF_OFFER_RESPONSE
        return {"kind": offer.kind, "reason": offer.reason, "response": response}

    def _offer_after_answer(self, tracker: DialogueStateTracker) -> str | None:
        """The offer this policy's latest answer said should follow it, once."""
        latest = self._own_last_action(tracker)
        return ((latest.metadata or {}).get("answer_choice") or {}).get("then", {}).get("response") \
            if latest else None

    def _usual_corpus_answer(self, intent: str, lang: str) -> str | None:
        """The corpus's most frequent answer to `intent` in `lang` (kept when the answer choice is on)."""
        if self._usual_answers is None:
            self._usual_answers = _corpus_answers((p["intent"], p["lang"], p["answer"])
                                                  for p in self.learnt.corpus_pairs)
        return self._usual_answers.get((intent, lang))

    def _generated_prediction(self, probabilities: list[float], sent: str, confidence: float,
                              metadata: dict[str, Any] | None = None) -> PolicyPrediction:
        metadata = {"reply_id": uuid.uuid4().hex, "generated_reply": sent, "confidence": round(confidence, 4),
                    "model_id": self.model_id, "generator": self.generator.architecture if self.generator else None,
                    **(metadata or {})}
        return self._prediction(probabilities, optional_events=[SlotSet(GENERATED_REPLY_SLOT, sent)],
                                action_metadata=metadata)

    def _choice_applies(self, tracker: DialogueStateTracker, intent: str | None, domain: Domain) -> bool:
        """The answer choice takes messages whose rule would send a template, and messages NLU is
        unsure of (except those carrying an order number, which start the order form)."""
        if not self.chooser or tracker.active_loop_name or not intent:
            return False
        if not {CLARIFY_RESPONSE, HANDOFF_OFFER_RESPONSE} <= set(domain.action_names_or_texts):
            return False
        if intent == UNSURE_INTENT:
            return not any(e.get("entity") == "order_id" for e in tracker.latest_message.entities)
        # out-of-scope messages stay with their rule: the generator never learnt them
        return intent in self.learnt.template_actions and intent not in (self.config.get("skip_intents") or [])

    def _may_offer_handoff(self, tracker: DialogueStateTracker, domain: Domain) -> bool:
        """For a message the generator would answer: whether the answer choice may offer a person
        instead (when no corpus question is close, or the reply skips the amount asked)."""
        return bool(self.chooser and not tracker.active_loop_name
                    and HANDOFF_OFFER_RESPONSE in domain.action_names_or_texts)

    @staticmethod
    def _language(tracker: DialogueStateTracker, text: str) -> str:
        return message_language(text) or tracker.get_slot(LANGUAGE_SLOT) or DEFAULT_LANGUAGE

    def _handoff_offer(self, domain: Domain, choice: Choice) -> PolicyPrediction:
        probabilities = self._default_predictions(domain)
        offer = OVERDUE_OFFER_RESPONSE if choice.overdue and OVERDUE_OFFER_RESPONSE in domain.responses \
            else HANDOFF_OFFER_RESPONSE
        probabilities[domain.index_for_action(offer)] = 1.0
        return self._prediction(probabilities, action_metadata={"answer_choice": {"kind": choice.kind,
                                                                                  "reason": choice.reason}})

    def _chosen_answer(self, tracker: DialogueStateTracker, domain: Domain, text: str,
                       intent: str, place_confirmed: bool = False) -> PolicyPrediction:
        """The answer choice's prediction for the customer's message; `place_confirmed`: the yes to
        the place it names is sent, and the answer follows."""
        assert self.chooser is not None
        probabilities = self._default_predictions(domain)
        lang = self._language(tracker, text)
        understandable = self._understandable_intents(domain)
        # a message setting what it wants against what it does not is read by what it wants
        wanted = wanted_part(text, lang) if self.chooser.settings.contrast else None
        nlu_intent = intent
        if intent == UNSURE_INTENT:
            understood = self.chooser.understood_by_corpus(wanted or text, lang, understandable)
        else:
            understood = self.chooser.wanted_intent(wanted, lang, intent, understandable) if wanted else None
        if understood:
            intent = understood.pair.intent
        ranking = [(r["name"], r["confidence"]) for r in tracker.latest_message.parse_data.get("intent_ranking", [])]
        labelled = {name for name, labels in self.learnt.intent_labels.items() if lang in labels}
        template = _in_language(self.learnt.intent_responses.get(intent, {}), lang)
        choice = self.chooser.before_generating(text, lang, intent, ranking, labelled, UNSURE_INTENT, template,
                                                lambda answer: not self._unsupported_claims(answer, tracker))
        reply = None
        if choice is None:
            if self.generator is None:
                return self._prediction(probabilities)
            reply = self._reply(text, intent, tracker)
            choice = self.chooser.after_generating(intent, reply.text, reply.confidence,
                                                   not self._unsupported_claims(reply.text, tracker), template,
                                                   text, lang)
        choice = self._unanswered_detail(choice, text, lang, intent, template, reply) or choice
        logger.debug("GenerativeResponsePolicy: %s for %r: %s", choice.kind, text, choice.reason)
        metadata: dict[str, Any] = {"answer_choice": {"kind": choice.kind, "reason": choice.reason}}
        if understood:
            why = (f"NLU read {nlu_intent}, but what the message asks for is {wanted!r}" if nlu_intent != UNSURE_INTENT
                   else f"NLU was unsure of what the message asks for, {wanted!r}" if wanted else "NLU was unsure")
            metadata["answer_choice"]["reason"] = (f"{why}; the corpus question {understood.pair.question!r} "
                                                   f"({understood.similarity:.2f}) is {intent}: {choice.reason}")
            metadata["answer_choice"]["understood_as"] = {
                "intent": intent, "question": understood.pair.question, "similarity": round(understood.similarity, 4)}
        served = self.chooser.delivers_there(text, intent) if choice.kind in (TEMPLATE, RETRIEVED, GENERATED) \
            and not place_confirmed else None
        if served and served.response in domain.action_names_or_texts:
            probabilities[domain.index_for_action(served.response)] = 1.0
            answer = metadata["answer_choice"]
            yes = {**answer, "kind": served.kind, "reason": f"{served.reason}; then {answer['reason']}"}
            return self._prediction(probabilities, optional_events=[SlotSet(DESTINATION_SLOT, served.named)],
                                    action_metadata={"answer_choice": yes})
        if self._answers_the_question(choice, intent):
            then = self._then_offer(self.chooser, tracker, text, lang, domain)
            if then:
                metadata["answer_choice"]["then"] = then
        if choice.kind == GENERATED and reply is not None:
            sent = self._finish(reply.text, tracker)
            if sent:
                probabilities[domain.index_for_action(GENERATED_REPLY_ACTION)] = 1.0
                return self._generated_prediction(probabilities, sent, reply.confidence, metadata)
        elif choice.kind == RETRIEVED:
            sent = self._finish(choice.reply, tracker)
            if sent:
                probabilities[domain.index_for_action(GENERATED_REPLY_ACTION)] = 1.0
                # the reply is the corpus's own answer, not the generator's
                return self._generated_prediction(probabilities, sent, choice.similarity,
                                                  {**metadata, "generator": "corpus"})
        elif choice.kind == CLARIFY:
            first, second = choice.intents
            labels = self.learnt.intent_labels
            probabilities[domain.index_for_action(CLARIFY_RESPONSE)] = 1.0
            return self._prediction(probabilities, optional_events=[
                SlotSet("clarify_first", labels[first][lang]), SlotSet("clarify_first_intent", first),
                SlotSet("clarify_second", labels[second][lang]), SlotSet("clarify_second_intent", second)],
                action_metadata=metadata)
        elif choice.kind == HANDOFF:
            return self._handoff_offer(domain, choice)
        elif choice.kind == NOT_OFFERED:
            probabilities[domain.index_for_action(choice.response)] = 1.0
            return self._prediction(probabilities, optional_events=[SlotSet(NOT_OFFERED_SLOT, choice.named)],
                                    action_metadata=metadata)
        template_action = self.learnt.template_actions.get(intent)
        then = metadata["answer_choice"].get("then")
        if (understood or place_confirmed or then) and template_action in domain.action_names_or_texts:
            # no rule answers a message NLU was unsure of (or misread) with this intent's response,
            # nor one after the yes to a place, and none follows it with the offer: the policy sends it
            probabilities[domain.index_for_action(template_action)] = 1.0
            return self._prediction(probabilities, action_metadata=metadata)
        # the template rule answers (or fallback, NLU being unsure); the reason goes to `kefu explain`
        return self._prediction(probabilities, action_metadata=metadata)

    def _own_last_action(self, tracker: DialogueStateTracker) -> ActionExecuted | None:
        """The bot's latest action when this policy chose it (not the wait for the customer), else None."""
        latest = tracker.get_last_event_for(ActionExecuted)
        if latest is None or latest.action_name == ACTION_LISTEN_NAME \
                or not (latest.policy or "").endswith(type(self).__name__):
            return None
        return latest

    def _unanswered_detail(self, choice: Choice, text: str, lang: str, intent: str, template: str | None,
                           reply: Reply | None) -> Choice | None:
        """When the answer chosen skips the amount or tax the message asks for: the template where it
        gives it, else the offer of a person."""
        assert self.chooser is not None
        if not self._answers_the_question(choice, intent):
            return None
        answer = {GENERATED: reply.text if reply else "", RETRIEVED: choice.reply}.get(choice.kind, template or "")
        return self.chooser.unanswered(text, lang, answer, template) if answer else None

    def _answers_the_question(self, choice: Choice, intent: str) -> bool:
        """Whether `choice` sends an answer (template, corpus answer or generated reply) to a
        question: not a question back, a no or a person, nor small talk's or an unsure message's
        template."""
        assert self.chooser is not None
        if choice.kind == TEMPLATE:
            return intent != UNSURE_INTENT and intent not in self.chooser.settings.keep_template_intents
        return choice.kind in (RETRIEVED, GENERATED)

    def _understandable_intents(self, domain: Domain) -> set[str]:
        """Intents a message NLU was unsure of may be answered as: those whose rule sends a written
        response and those the generator answers; small talk (`keep_template_intents`) and flows
        stay with NLU."""
        assert self.chooser is not None
        intents = {intent for intent, action in self.learnt.template_actions.items()
                   if action in domain.action_names_or_texts}
        if self.generator is not None:
            intents |= {pair["intent"] for pair in self.learnt.corpus_pairs if not self._not_mine(pair["intent"])}
        skipped = set(self.config.get("skip_intents") or []) | set(self.chooser.settings.keep_template_intents)
        return intents - skipped
