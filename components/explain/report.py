"""An explanation of one answer, as plain data, and its two renderings: text for the terminal
and one self-contained HTML file (inline CSS, no scripts, nothing fetched) staff can open
offline. No Rasa; every sentence staff read comes from `LABELS`."""

from __future__ import annotations

import html
from dataclasses import asdict, dataclass, field
from typing import Any

from components.explain.attribution import Token

# The sentences and headings staff read, in one place.
LABELS = {
    "title": "Why Kefu answered this way",
    "message": "Message",
    "conversation": "Conversation {conversation_id}, turn {turn}",
    "intent": "Intent",
    "intent_line": "{intent} ({confidence:.2f})",
    "runner_up": "runner-up {intent} ({confidence:.2f})",
    "first_choice": "NLU's first choice {intent} ({confidence:.2f})",
    "words_for": "Words for {intent}",
    "method": "Word weights: {method}; green speaks for the intent, red against it.",
    "who_answered": "Who answered",
    "policy_header": "policy | predicts | confidence",
    "recorded": "What the bot did then",
    "generated": "Generated reply",
    "sent": "Sent: {text}",
    "not_sent": "Not sent.",
    "confidence": "Calibrated confidence {confidence:.2f} (the policy answers from {threshold:.2f})",
    "checks": "Reply checks",
    "passed": "passed",
    "failed": "failed",
    "attention": "What each part of the reply read ({architecture} attention over the source)",
    "evidence": "Nearest corpus pairs",
    "evidence_line": "{similarity:.2f}  [{intent}] {question} -> {answer}",
    "model": "Model {model}",
    # why the bot answered as it did
    "answered_intent": "{policy} answered {intent} with {action}.",
    "answered_generated": "The generator answered ({confidence:.2f} >= {threshold:.2f}).",
    "answered_retrieved": "The bot sent a corpus answer: {reason}.",
    "answered_understood": "{policy} answered {intent} with {action}: {reason}.",
    "answered_kept": "{policy} answered {intent} with {action}; the answer choice kept it: {reason}.",
    "answered_fallback": "The bot fell back: {reason}",
    "answered_handoff": "The bot handed the customer to a person: {reason}",
    "then_offer": "Then it offers a person: {reason}.",
    "fallback_nlu": "NLU is unsure ({intent} {confidence:.2f} is below the fallback threshold).",
    "fallback_core": "no policy was sure of a next action (best {confidence:.2f}).",
    "handoff_asked": "the customer asked for a person ({intent} {confidence:.2f}).",
    "handoff_offered": "the bot had offered a person and the customer agreed ({intent} {confidence:.2f}).",
    "handoff_other": "{action} was predicted by {policy} ({confidence:.2f}).",
    "check_intent_ok": "the generator may answer {intent}",
    "check_intent_bad": "the generator leaves {intent} to the rules and the fallback",
    "check_threshold": "confidence {confidence:.2f} against the threshold {threshold:.2f}",
    "check_facts_ok": "states no number, duration or price the shop facts do not state",
    "check_facts_bad": "states {claims}, which the shop facts do not",
    "check_placeholders_ok": "every placeholder filled",
    "check_placeholders_bad": "a sentence with a placeholder the bot cannot fill is dropped",
    "check_blocklist_ok": "no blocked phrase",
    "check_blocklist_bad": "a sentence with a blocked phrase is dropped",
    "check_length_ok": "within {limit} characters",
    "check_length_bad": "cut to {limit} characters",
    "check_choice": "answer choice: {kind}, {reason}",
}


@dataclass
class IntentWeights:
    intent: str
    confidence: float
    weights: list[float]  # one per token of IntentExplanation.tokens


@dataclass
class IntentExplanation:
    text: str
    language: str
    tokens: list[Token]
    intent: str  # as NLU reports it, the fallback included
    confidence: float
    predicted: IntentWeights  # the classifier's first intent (the fallback set aside)
    runner_up: IntentWeights | None
    ranking: list[tuple[str, float]]
    method: str  # how the weights were computed
    seconds: float


@dataclass
class PolicyScore:
    policy: str
    action: str | None  # the action it predicts, None when it predicts nothing
    confidence: float
    won: bool = False


@dataclass
class ReplyCheck:
    name: str
    passed: bool
    detail: str


@dataclass
class Evidence:
    question: str
    answer: str
    intent: str | None
    similarity: float


@dataclass
class GeneratedReplyExplanation:
    architecture: str
    source: str  # what the generator read
    source_tokens: list[str]
    reply: str  # as generated, before the checks
    reply_tokens: list[str]
    attention: list[list[float]]  # [reply token][source token]
    confidence: float
    threshold: float
    sent: str  # after the checks; "" when nothing is sent
    checks: list[ReplyCheck] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class Explanation:
    message: str
    intent: IntentExplanation
    policies: list[PolicyScore]
    action: str  # the winning policy's action
    answer: str  # intent | generated | retrieved | fallback | handoff
    summary: str  # one sentence: why
    generated: GeneratedReplyExplanation | None = None
    conversation_id: str | None = None
    turn: int | None = None
    recorded: list[str] = field(default_factory=list)  # a stored turn: the actions taken then
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _intent_headline(intent: IntentExplanation) -> str:
    head = LABELS["intent_line"].format(intent=intent.intent, confidence=intent.confidence)
    if intent.predicted.intent and intent.predicted.intent != intent.intent:  # the fallback won
        head += ", " + LABELS["first_choice"].format(intent=intent.predicted.intent,
                                                     confidence=intent.predicted.confidence)
    if intent.runner_up:
        runner_up = intent.runner_up
        head += ", " + LABELS["runner_up"].format(intent=runner_up.intent, confidence=runner_up.confidence)
    return head


def _weights_line(tokens: list[Token], weights: IntentWeights) -> str:
    ranked = sorted(zip(tokens, weights.weights, strict=True), key=lambda pair: -abs(pair[1]))
    return ", ".join(f"{token.text} {weight:+.3f}" for token, weight in ranked)


def render_text(explanation: Explanation) -> str:
    intent = explanation.intent
    lines = [f"{LABELS['message']}: {intent.text} ({intent.language})"]
    if explanation.conversation_id is not None:
        lines.append(LABELS["conversation"].format(conversation_id=explanation.conversation_id,
                                                   turn=explanation.turn))
    lines.append(f"{LABELS['intent']}: {_intent_headline(intent)}")
    for weights in filter(None, (intent.predicted, intent.runner_up)):
        lines.append(f"  {LABELS['words_for'].format(intent=weights.intent)}: {_weights_line(intent.tokens, weights)}")
    lines.append(f"  ({intent.method})")
    lines.append(f"{LABELS['who_answered']}: {explanation.summary}")
    for score in explanation.policies:
        mark = "*" if score.won else " "
        lines.append(f"  {mark} {score.policy:<28} {score.action or '-':<28} {score.confidence:.2f}")
    if explanation.recorded:
        lines.append(f"{LABELS['recorded']}: " + "; ".join(explanation.recorded))
    generated = explanation.generated
    if generated:
        lines.append(f"{LABELS['generated']}: {generated.reply}")
        lines.append("  " + (LABELS["sent"].format(text=generated.sent) if generated.sent else LABELS["not_sent"]))
        lines.append("  " + LABELS["confidence"].format(confidence=generated.confidence,
                                                        threshold=generated.threshold))
        for check in generated.checks:
            lines.append(f"  [{LABELS['passed'] if check.passed else LABELS['failed']}] {check.name}: {check.detail}")
        lines.append("  " + LABELS["attention"].format(architecture=generated.architecture) + ":")
        for token, row in zip(generated.reply_tokens, generated.attention, strict=False):
            top = sorted(range(len(row)), key=lambda i: -row[i])[:3]
            read = ", ".join(f"{generated.source_tokens[i]!r} {row[i]:.2f}" for i in top)
            lines.append(f"    {token!r:>14} <- {read}")
        lines.append("  " + LABELS["evidence"] + ":")
        lines += ["    " + LABELS["evidence_line"].format(**asdict(e)) for e in generated.evidence]
    if explanation.model:
        lines.append(LABELS["model"].format(model=explanation.model))
    return "\n".join(lines)


_STYLE = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:1.5em auto;
max-width:60em;padding:0 1em;color:#1f2933}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #d9e2ec}
.message{font-size:1.25em;margin:.4em 0}.token{border-radius:3px;padding:0 2px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #d9e2ec;padding:2px 6px;text-align:left}
.won{font-weight:bold}.passed{color:#1b7a3a}.failed{color:#b42318}.note{color:#52606d;font-size:.9em}
.attention td{min-width:1.6em;text-align:center;font-size:.8em}.attention th{font-weight:normal;font-size:.85em}
"""


def _shade(weight: float, scale: float) -> str:
    """Green for a word that speaks for the intent, red against, stronger the larger."""
    alpha = min(abs(weight) / scale, 1.0) * 0.75 if scale > 0 else 0.0
    colour = "22,163,74" if weight >= 0 else "220,38,38"
    return f"background-color:rgba({colour},{alpha:.2f})"


def _shaded_message(intent: IntentExplanation, weights: IntentWeights) -> str:
    scale = max((abs(w) for w in weights.weights), default=0.0)
    parts, cursor = [], 0
    for token, weight in zip(intent.tokens, weights.weights, strict=True):
        parts.append(html.escape(intent.text[cursor:token.start]))
        parts.append(f'<span class="token" style="{_shade(weight, scale)}" title="{weight:+.3f}" '
                     f'data-weight="{weight:.4f}">{html.escape(token.text)}</span>')
        cursor = token.end
    parts.append(html.escape(intent.text[cursor:]))
    return f'<p class="message" lang="{intent.language}">{"".join(parts)}</p>'


def _attention_table(generated: GeneratedReplyExplanation) -> str:
    head = "".join(f"<th>{html.escape(t)}</th>" for t in generated.source_tokens)
    rows = []
    for token, row in zip(generated.reply_tokens, generated.attention, strict=False):
        cells = "".join(f'<td style="background-color:rgba(37,99,235,{min(w, 1.0) * 0.85:.2f})" '
                        f'title="{w:.2f}">{round(100 * w)}</td>' for w in row)
        rows.append(f"<tr><th>{html.escape(token)}</th>{cells}</tr>")
    return f'<table class="attention"><tr><th></th>{head}</tr>{"".join(rows)}</table>'


def render_html(explanation: Explanation) -> str:
    """One HTML page with everything inline."""
    intent, e = explanation.intent, html.escape
    body = [f"<h1>{e(LABELS['title'])}</h1>"]
    if explanation.conversation_id is not None:
        body.append(f'<p class="note">{e(LABELS["conversation"].format(conversation_id=explanation.conversation_id, turn=explanation.turn))}</p>')  # noqa: E501
    body.append(f"<h2>{e(LABELS['intent'])}: {e(_intent_headline(intent))}</h2>")
    for weights in filter(None, (intent.predicted, intent.runner_up)):
        body.append(f'<h3>{e(LABELS["words_for"].format(intent=weights.intent))}</h3>')
        body.append(_shaded_message(intent, weights))
    body.append(f'<p class="note">{e(LABELS["method"].format(method=intent.method))}</p>')
    body.append(f"<h2>{e(LABELS['who_answered'])}</h2><p>{e(explanation.summary)}</p>")
    header = "".join(f"<th>{e(h.strip())}</th>" for h in LABELS["policy_header"].split("|"))
    rows = "".join(f'<tr class="{"won" if s.won else ""}"><td>{e(s.policy)}</td><td>{e(s.action or "-")}</td>'
                   f"<td>{s.confidence:.2f}</td></tr>" for s in explanation.policies)
    body.append(f"<table><tr>{header}</tr>{rows}</table>")
    if explanation.recorded:
        body.append(f"<p>{e(LABELS['recorded'])}: {e('; '.join(explanation.recorded))}</p>")
    generated = explanation.generated
    if generated:
        body.append(f"<h2>{e(LABELS['generated'])}</h2><p>{e(generated.reply)}</p>")
        body.append(f"<p>{e(LABELS['sent'].format(text=generated.sent) if generated.sent else LABELS['not_sent'])}</p>")
        body.append(f"<p>{e(LABELS['confidence'].format(confidence=generated.confidence, threshold=generated.threshold))}</p>")  # noqa: E501
        checks = "".join(f'<li class="{"passed" if c.passed else "failed"}">{e(c.name)}: '
                         f'{e(LABELS["passed"] if c.passed else LABELS["failed"])}, {e(c.detail)}</li>'
                         for c in generated.checks)
        body.append(f"<h3>{e(LABELS['checks'])}</h3><ul>{checks}</ul>")
        body.append(f"<h3>{e(LABELS['attention'].format(architecture=generated.architecture))}</h3>")
        body.append(_attention_table(generated))
        evidence = "".join(f"<tr><td>{p.similarity:.2f}</td><td>{e(p.intent or '')}</td><td>{e(p.question)}</td>"
                           f"<td>{e(p.answer)}</td></tr>" for p in generated.evidence)
        body.append(f"<h3>{e(LABELS['evidence'])}</h3><table>{evidence}</table>")
    if explanation.model:
        body.append(f'<p class="note">{e(LABELS["model"].format(model=explanation.model))}</p>')
    return (f'<!DOCTYPE html>\n<html lang="{intent.language}"><head><meta charset="utf-8">'
            f"<title>{e(LABELS['title'])}</title><style>{_STYLE}</style></head>"
            f"<body>{''.join(body)}</body></html>\n")
