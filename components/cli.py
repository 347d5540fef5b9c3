"""The `kefu` command: staff and maintenance tasks around the assistant."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from components import __version__
from components.corpus import FORMATS, BuildConfig, CorpusError, build_corpus
from components.feedback import FeedbackLog, satisfaction, training_pairs
from components.handoff import HandoffQueue
from components.stores.encryption import EncryptionKeyError
from components.text import LANGUAGES


class CommandError(Exception):
    """A failure the user can fix; printed without a traceback."""


def _print_requests(queue: HandoffQueue, include_resumed: bool, reasons: dict[str, list[str]] | None = None) -> None:
    requests = queue.requests(include_resumed=include_resumed)
    if not requests:
        print("No open hand-off requests." if not include_resumed else "No hand-off requests.")
        return
    for request in requests:
        state = "open" if request.is_open else f"resumed {request.resumed_at}"
        print(f"{request.conversation_id}  requested {request.requested_at}  ({state})")
        for message in request.last_messages:
            speaker = "customer" if message["role"] == "user" else "bot"
            print(f"    {speaker:>8}: {message['text']}")
        for line in (reasons or {}).get(request.conversation_id, []):
            print(f"    {line}")


def _newest_model(folder: Path = Path("models")) -> Path:
    models = sorted(folder.glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    if not models:
        raise CommandError(f"{folder}: no trained model; run `rasa train` or pass --model")
    return models[-1]


async def _handoff_reasons(args: argparse.Namespace, conversation_ids: list[str]) -> dict[str, list[str]]:
    """Why the bot handed each conversation over: the explained turn, its answer and top words."""
    from components.explain.assistant import AssistantExplainer, ExplainError, open_tracker_store
    from components.explain.report import LABELS

    try:
        explainer = AssistantExplainer.load(args.model or _newest_model(), samples=args.samples)
        store = open_tracker_store(args.endpoints, explainer.domain)
    except ExplainError as error:
        raise CommandError(str(error)) from error
    reasons = {}
    for conversation_id in conversation_ids:
        explanation = await explainer.explain_handoff(store, conversation_id)
        if explanation is None:
            reasons[conversation_id] = ["why: the hand-off is not in the tracker store"]
            continue
        predicted = explanation.intent.predicted
        words = sorted(zip(explanation.intent.tokens, predicted.weights, strict=True), key=lambda pair: -pair[1])[:3]
        reasons[conversation_id] = [
            f"why: turn {explanation.turn} \"{explanation.message}\": {explanation.summary}",
            f"     {LABELS['words_for'].format(intent=predicted.intent)}: "
            + ", ".join(f"{token.text} {weight:+.2f}" for token, weight in words)]
    return reasons


def _handoff_list(args: argparse.Namespace) -> None:
    queue = HandoffQueue(args.db)
    reasons = None
    if args.explain:
        ids = list(dict.fromkeys(r.conversation_id for r in queue.requests(include_resumed=args.all)))
        reasons = asyncio.run(_handoff_reasons(args, ids)) if ids else None
    _print_requests(queue, args.all, reasons)


def _explain(args: argparse.Namespace) -> None:
    from components.explain.assistant import AssistantExplainer, ExplainError, open_tracker_store
    from components.explain.report import render_html, render_text

    if (args.message is None) == (args.conversation is None) or (args.conversation and args.turn is None):
        raise CommandError("explain a MESSAGE, or a stored turn with --conversation ID --turn N")
    try:
        explainer = AssistantExplainer.load(args.model, args.samples, args.seed)
        if args.message is not None:
            explanation = asyncio.run(explainer.explain_message(args.message))
        else:
            store = open_tracker_store(args.endpoints, explainer.domain)
            explanation = asyncio.run(explainer.explain_turn(store, args.conversation, args.turn))
    except ExplainError as error:
        raise CommandError(str(error)) from error
    print(render_text(explanation))
    for path, text in ((args.html, render_html(explanation)),
                       (args.json, json.dumps(explanation.to_dict(), ensure_ascii=False, indent=2) + "\n")):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"Wrote {path}")


async def _resume_conversation(conversation_id: str, endpoints: Path, domain: Path) -> None:
    # Rasa is slow to import, so only the command that needs it pays for it.
    from rasa.core.tracker_store import InMemoryTrackerStore, TrackerStore
    from rasa.core.utils import AvailableEndpoints
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, ConversationResumed

    for path in (endpoints, domain):
        if not path.is_file():
            raise CommandError(f"{path}: no such file; pass --endpoints/--domain")
    store = TrackerStore.create(
        AvailableEndpoints.read_endpoints(str(endpoints)).tracker_store,
        domain=Domain.load(str(domain)),
    )
    if isinstance(store, InMemoryTrackerStore):
        raise CommandError(
            f"{endpoints}: the tracker store is in memory, so this process cannot reach the "
            "bot's conversations; configure a SQL or Redis tracker store"
        )
    tracker = await store.retrieve(conversation_id)
    if tracker is None:
        raise CommandError(f"conversation {conversation_id!r} is not in the tracker store")
    if tracker.is_paused():
        tracker.update(ConversationResumed())
        # A paused bot never ran action_listen, so the customer's next message would
        # follow the hand-off action and no rule would match it.
        tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
        await store.save(tracker)


def _resume(args: argparse.Namespace) -> None:
    queue = HandoffQueue(args.db)
    if queue.open_request(args.conversation_id) is None:
        raise CommandError(
            f"no open hand-off request for {args.conversation_id!r}; "
            "`kefu handoff list` shows the open ones"
        )
    asyncio.run(_resume_conversation(args.conversation_id, args.endpoints, args.domain))
    queue.mark_resumed(args.conversation_id)
    print(f"Resumed {args.conversation_id}: the bot answers this customer again.")


def _feedback_stats(args: argparse.Namespace) -> None:
    replies = FeedbackLog(args.db).replies()
    if not replies:
        print("No feedback yet.")
        return
    for by, title in (("intent", "intent"), ("model_id", "model"), ("day", "day")):
        print(f"\n| {title} | 👍 | ratings | satisfaction |\n|---|---|---|---|")
        for group, up, total, share in satisfaction(replies, by):
            print(f"| {group} | {up} | {total} | {share:.0%} |")


def _feedback_review(args: argparse.Namespace) -> None:
    log = FeedbackLog(args.db)
    for reply_id, approved in [*((r, True) for r in args.approve), *((r, False) for r in args.reject)]:
        try:
            log.decide(reply_id, approved)
        except KeyError as error:
            raise CommandError(str(error)) from None
        print(f"{'Approved' if approved else 'Rejected'} the correction of {reply_id}.")
    if args.approve or args.reject:
        return
    pending = [r for r in log.replies() if r.correction and r.review is None]
    if not pending:
        print("No corrections wait for review.")
    for reply in pending:
        print(f"{reply.reply_id}  {reply.conversation_id}  {reply.rated_at}\n    customer: {reply.user_message}\n"
              f"    bot:      {reply.bot_reply}\n    proposed: {reply.correction}")
    if pending:
        print("\nApprove or reject with `kefu feedback review --approve ID` / `--reject ID`.")


def _feedback_export(args: argparse.Namespace) -> None:
    lines = training_pairs(FeedbackLog(args.db).replies(), per_conversation=args.per_conversation)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    print(f"Wrote {len(lines)} pairs to {args.out}; next: `kefu corpus build` and `rasa train --finetune`.")


async def _forget_conversation(conversation_id: str, endpoints: Path) -> int:
    from rasa.core.tracker_store import SQLTrackerStore, TrackerStore
    from rasa.core.utils import AvailableEndpoints

    from components.stores import RedisTrackerStore

    if not endpoints.is_file():
        raise CommandError(f"{endpoints}: no such file; pass --endpoints")
    store = TrackerStore.create(AvailableEndpoints.read_endpoints(str(endpoints)).tracker_store)
    if isinstance(store, RedisTrackerStore):
        return store.delete(conversation_id)
    if isinstance(store, SQLTrackerStore):
        with store.session_scope() as session:
            deleted = session.query(store.SQLEvent).filter(store.SQLEvent.sender_id == conversation_id).delete()
            session.commit()
        return deleted
    raise CommandError(f"{endpoints}: `kefu forget` knows Kefu's Redis store and SQL stores, not "
                       f"{type(store).__name__}")


def _forget(args: argparse.Namespace) -> None:
    from components.channels.message_ids import RedisRecords
    from components.stores.connection import connect, redis_url

    sessions = asyncio.run(_forget_conversation(args.conversation_id, args.endpoints))
    feedback = FeedbackLog(args.feedback_db).forget(args.conversation_id)
    handoffs = HandoffQueue(args.handoff_db).forget(args.conversation_id)
    url = redis_url()  # message ids' recorded replies live in Redis only
    message_ids = RedisRecords(connect(url)).forget(args.conversation_id) if url else 0
    print(f"Forgot {args.conversation_id}: {sessions} session record(s), {feedback} feedback entr(y/ies), "
          f"{handoffs} hand-off request(s), {message_ids} message-id record(s).")


def _rotate_key(args: argparse.Namespace) -> None:
    """Every store re-encrypted under the newest key, one after the other; each skips records
    already under it, so a run that was interrupted is resumed by running it again."""
    from rasa.core.tracker_store import TrackerStore
    from rasa.core.utils import AvailableEndpoints
    from redis.exceptions import ResponseError

    from components.channels.message_ids import RedisRecords
    from components.stores.connection import connect, redis_url
    from components.stores.encryption import ENCRYPTION_KEY_VARIABLE, Cipher
    from components.stores.tracker_store import RedisTrackerStore, SQLiteTrackerStore

    if not args.endpoints.is_file():
        raise CommandError(f"{args.endpoints}: no such file; pass --endpoints")
    if not Cipher.from_environment().enabled:
        raise CommandError(f"{ENCRYPTION_KEY_VARIABLE} is not set; set it to NEW_KEY,OLD_KEY (the new key first), "
                           "or to the one key to encrypt what was stored before encryption was on")
    store = TrackerStore.create(AvailableEndpoints.read_endpoints(str(args.endpoints)).tracker_store)
    if not isinstance(store, RedisTrackerStore | SQLiteTrackerStore):
        raise CommandError(f"{args.endpoints}: `kefu rotate-key` knows Kefu's tracker store "
                           f"(components.stores.RedisTrackerStore), not {type(store).__name__}")
    steps = [("conversation event(s)", store.reencrypt)]
    if redis_url():
        steps.append(("message-id reply record(s)", RedisRecords(connect(redis_url())).reencrypt))
    steps += [("feedback entr(y/ies)", FeedbackLog(args.feedback_db).reencrypt),
              ("hand-off request(s)", HandoffQueue(args.handoff_db).reencrypt)]
    for what, reencrypt in steps:
        print(f"Re-encrypted {reencrypt()} {what}.", flush=True)
    if redis_url():
        # Redis's AOF still holds the values as first written until it is rewritten.
        try:
            connect(redis_url()).bgrewriteaof()
            print("Asked Redis to rewrite its AOF file (BGREWRITEAOF), which drops the old values.")
        except ResponseError as error:
            print(f"Redis refused BGREWRITEAOF ({error}); until its AOF is rewritten it holds the old values.")
    print(f"Done: everything is under the first key of {ENCRYPTION_KEY_VARIABLE}; the others can go.")


def _build_corpus(args: argparse.Namespace) -> None:
    config = BuildConfig(
        seed=args.seed, lang=args.lang, valid_fraction=args.valid, test_fraction=args.test,
        input_format=args.format, question_column=args.question_column,
        answer_column=args.answer_column, intent_column=args.intent_column,
        skip_bad=args.skip_bad, max_question_chars=args.max_question_chars,
        max_answer_chars=args.max_answer_chars,
        near_duplicate_threshold=args.near_duplicate_threshold,
        order_id_pattern=args.order_id_pattern,
    )
    report = build_corpus(args.inputs, args.out, config)
    sizes = ", ".join(f"{name} {split['pairs']}" for name, split in report.splits.items())
    print(f"Wrote {args.out}/{{train,valid,test}}.jsonl ({sizes}) and {args.out}/report.md")


def _read_generator_config(path: Path | None):  # noqa: ANN202 - GeneratorConfig, imported late
    import yaml

    from components.generator.training import GeneratorConfig

    if path is None:
        return GeneratorConfig()
    if not path.is_file():
        raise CommandError(f"{path}: no such config file")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise CommandError(f"{path}: not valid YAML or JSON ({error})") from error
    if not isinstance(values, dict):
        raise CommandError(f"{path}: expected a mapping of settings")
    try:
        return GeneratorConfig.from_dict(values, str(path))
    except (TypeError, ValueError) as error:
        raise CommandError(str(error)) from error


def _train_generator(args: argparse.Namespace) -> None:
    """One process, or one rank of a torchrun group: the ranks train together, rank 0 saves."""
    import json

    from components.generator import distributed
    from components.generator.data import read_split
    from components.generator.training import train_generator, training_report

    config = _read_generator_config(args.config)
    try:
        train, valid = read_split(args.corpus, "train"), read_split(args.corpus, "valid")
        result = train_generator(train, valid, config, init_from=args.init_from,
                                 checkpoint=args.out / "checkpoint" if args.checkpoints else None)
    except ValueError as error:
        raise CommandError(str(error)) from error
    finally:
        distributed.leave()
    ranks = result.ranks
    if ranks.distributed:
        print(f"rank {ranks.rank} of {ranks.world_size}: weights {distributed.weights_digest(result.generator.model)}")
    if not ranks.is_main:
        return
    result.generator.save(args.out)
    report = {**training_report(result, config), "processes": ranks.world_size}
    (args.out / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    best = result.history[result.best_epoch - 1]
    print(f"Trained a {result.generator.architecture} generator ({report['parameters']:,} parameters) on "
          f"{len(train)} pairs in {result.seconds:.0f} s with {ranks.world_size} process(es): best epoch "
          f"{result.best_epoch} of {len(result.history)}, valid perplexity {best['valid_perplexity']:.2f}. "
          f"Saved to {args.out}")


def _decoding_from(args: argparse.Namespace, generator):  # noqa: ANN001, ANN202 - ResponseGenerator, DecodingSettings
    from dataclasses import replace

    changes = {name: getattr(args, name) for name in ("strategy", "beam_width", "samples", "neighbours",
                                                      "min_length", "max_length", "temperature", "top_k", "top_p",
                                                      "seed")
               if getattr(args, name) is not None}
    try:
        decoding = replace(generator.decoding, **changes)
        generator.check_decoding(decoding)
    except ValueError as error:
        raise CommandError(str(error)) from error
    return decoding


def _load_generator(path: Path):  # noqa: ANN202 - ResponseGenerator
    from components.generator.generator import GeneratorFileError, ResponseGenerator

    try:
        return ResponseGenerator.load(path, device=os.environ.get("KEFU_DEVICE", "auto"))
    except GeneratorFileError as error:
        raise CommandError(str(error)) from error


def _reply(args: argparse.Namespace) -> None:
    generator = _load_generator(args.model)
    reply = generator.reply(args.question, args.context or (), _decoding_from(args, generator))
    print(reply.text)
    if args.verbose:
        print(f"(confidence {reply.confidence:.2f}, mean log-prob {reply.mean_log_prob:.3f}, "
              f"{reply.tokens} tokens)", file=sys.stderr)


def _compress_generator(args: argparse.Namespace) -> None:
    from components.generator.compression import CompressionSettings, sparsity

    try:
        settings = CompressionSettings(int8=args.int8, prune=args.prune)
    except ValueError as error:
        raise CommandError(f"--prune: {error}") from error
    if not settings.compresses:
        raise CommandError("nothing to do: give --int8 and/or --prune SHARE (e.g. --int8 --prune 0.3)")
    if args.out.resolve() == args.model.resolve():
        raise CommandError(f"--out {args.out} is MODEL itself; compression loses precision, so write it elsewhere "
                           "and keep the original")
    generator = _load_generator(args.model)
    generator.compress(settings)
    generator.save(args.out)

    def megabytes(folder: Path) -> float:
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 2**20

    print(f"Compressed {args.model} ({megabytes(args.model):.1f} MB) to {args.out} ({megabytes(args.out):.1f} MB): "
          f"{generator.compression.describe()}; {sparsity(generator.model):.1%} of the weights are zero. "
          f"It loads like any generator: `kefu generator reply {args.out} \"...\"`, or the policy's generator_path.")


def _evaluate(args: argparse.Namespace) -> None:
    from components.generator.data import read_split
    from components.generator.evaluation import (
        GeneratorSystem,
        IntentPrototypeBaseline,
        RetrievalBaseline,
        evaluate_system,
        signatures,
        write_report,
    )

    try:
        train, test = read_split(args.corpus, "train"), read_split(args.corpus, "test")
    except ValueError as error:
        raise CommandError(str(error)) from error
    test = test[: args.limit] if args.limit else test
    systems = [RetrievalBaseline(train)]
    try:
        systems.append(IntentPrototypeBaseline(train))
    except ValueError as error:
        print(f"kefu: skipping a baseline: {error}", file=sys.stderr)
    for path in args.model:
        generator = _load_generator(path)
        name = f"{generator.architecture} ({path.name})"
        if args.retrieval_k is not None:
            if generator.retrieval is None:
                raise CommandError(f"{path}: trained without retrieval, so --retrieval-k does not apply to it")
            generator.inputs.retrieval_k = args.retrieval_k
            name = f"{generator.architecture}, {args.retrieval_k} retrieved ({path.name})"
        systems.append(GeneratorSystem(generator, name, _decoding_from(args, generator)))
    rows = []
    for system in systems:
        rows.append(evaluate_system(system, test, args.latency_samples))
        print(f"{system.name}: BLEU {rows[-1].bleu:.2f}, ROUGE-L {rows[-1].rouge_l:.2f}", file=sys.stderr)
    signature = signatures(test)
    notes = [f"Test split of `{args.corpus}`: {len(test)} pairs; trained on {len(train)}.",
             f"BLEU: sacrebleu `{signature['bleu']}`; chrF: `{signature['chrf']}`.",
             "ROUGE-L, distinct-n, exact match and length use lower-cased words and punctuation, "
             "each Chinese character a word. Latency: one reply at a time, on the first "
             f"{min(args.latency_samples, len(test))} test questions. ECE: expected calibration error of the "
             "generator's confidence as P(token F1 >= 0.5)."]
    print(write_report(rows, args.out, "Reply evaluation", notes))


def _add_decoding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", choices=("greedy", "beam", "sample", "mbr"), default=None,
                        help="decoding (default: the model's own); mbr: the beam's best and --samples sampled "
                             "replies, the one most like the others wins")
    parser.add_argument("--beam-width", type=int, default=None)
    parser.add_argument("--samples", type=int, default=None, help="mbr: replies sampled beside the beam's best")
    parser.add_argument("--neighbours", type=int, default=None,
                        help="mbr: also liken the replies to the answers of this many nearest training questions "
                             "(a generator trained with mbr neighbours keeps its training pairs)")
    parser.add_argument("--min-length", type=int, default=None, help="generated tokens before the reply may end")
    parser.add_argument("--max-length", type=int, default=None, help="generated tokens at most")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--top-p", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None, help="sampling seed")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kefu", usage="kefu [-h] [--version] COMMAND ...",
        description="Kefu, a customer-service assistant built on Rasa.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"kefu {__version__}")
    parser.set_defaults(run=lambda args: parser.print_help())
    # The commands are listed, nested ones too, in the epilog that main() writes.
    commands = parser.add_subparsers(metavar="COMMAND", help=argparse.SUPPRESS)

    queue_file = argparse.ArgumentParser(add_help=False)
    queue_file.add_argument(
        "--db", type=Path, default=None,
        help="hand-off queue file (default: $KEFU_HANDOFF_DB or .kefu/handoffs.db)",
    )
    handoff = commands.add_parser("handoff", help="conversations handed over to staff")
    handoff.set_defaults(run=lambda args: handoff.print_help())
    handoff_commands = handoff.add_subparsers(metavar="ACTION")
    handoff_list = handoff_commands.add_parser(
        "list", parents=[queue_file], help="list open hand-off requests"
    )
    handoff_list.add_argument(
        "--all", action="store_true", help="also list requests already resumed"
    )
    handoff_list.add_argument("--explain", action="store_true",
                              help="say why the bot handed each conversation over (reads the tracker store)")
    handoff_list.add_argument("--model", type=Path, default=None, help="with --explain (default: newest in models/)")
    handoff_list.add_argument("--endpoints", type=Path, default=Path("endpoints.yml"))
    handoff_list.add_argument("--samples", type=int, default=128, help="with --explain: messages per attribution")
    handoff_list.set_defaults(run=_handoff_list)

    handoff_resume = handoff_commands.add_parser(
        "resume", parents=[queue_file], help="hand a paused conversation back to the bot"
    )
    handoff_resume.add_argument("conversation_id", metavar="ID")
    handoff_resume.add_argument("--endpoints", type=Path, default=Path("endpoints.yml"))
    handoff_resume.add_argument("--domain", type=Path, default=Path("domain.yml"))
    handoff_resume.set_defaults(run=_resume)

    feedback_file = argparse.ArgumentParser(add_help=False)
    feedback_file.add_argument(
        "--db", type=Path, default=None,
        help="feedback file when REDIS_URL is unset (default: $KEFU_FEEDBACK_DB or .kefu/feedback.db)",
    )
    feedback = commands.add_parser("feedback", help="customers' ratings and corrections of generated replies")
    feedback.set_defaults(run=lambda args: feedback.print_help())
    feedback_commands = feedback.add_subparsers(metavar="ACTION")
    feedback_commands.add_parser(
        "stats", parents=[feedback_file], help="satisfaction per intent, model and day"
    ).set_defaults(run=_feedback_stats)
    review = feedback_commands.add_parser(
        "review", parents=[feedback_file], help="list corrections waiting for review, or approve/reject them"
    )
    review.add_argument("--approve", nargs="*", default=[], metavar="REPLY_ID")
    review.add_argument("--reject", nargs="*", default=[], metavar="REPLY_ID")
    review.set_defaults(run=_feedback_review)
    export = feedback_commands.add_parser(
        "export", parents=[feedback_file],
        help="write up-voted pairs and approved corrections, PII-masked, as corpus JSONL",
    )
    export.add_argument("--out", type=Path, required=True, metavar="FILE")
    export.add_argument("--per-conversation", type=int, default=3,
                        help="most pairs taken from one conversation")
    export.set_defaults(run=_feedback_export)

    forget = commands.add_parser(
        "forget", help="erase a conversation: events, feedback, hand-off records"
    )
    forget.add_argument("conversation_id", metavar="CONVERSATION_ID")
    forget.add_argument("--endpoints", type=Path, default=Path("endpoints.yml"))
    forget.add_argument("--feedback-db", type=Path, default=None)
    forget.add_argument("--handoff-db", type=Path, default=None)
    forget.set_defaults(run=_forget)

    rotate_key = commands.add_parser(
        "rotate-key", help="re-encrypt stored conversations, replies, feedback and hand-offs under the newest key"
    )
    rotate_key.add_argument("--endpoints", type=Path, default=Path("endpoints.yml"))
    rotate_key.add_argument("--feedback-db", type=Path, default=None)
    rotate_key.add_argument("--handoff-db", type=Path, default=None)
    rotate_key.set_defaults(run=_rotate_key)

    defaults = BuildConfig()
    corpus = commands.add_parser("corpus", help="build the question-answer corpus")
    corpus.set_defaults(run=lambda args: corpus.print_help())
    corpus_commands = corpus.add_subparsers(metavar="ACTION")
    build = corpus_commands.add_parser(
        "build", help="clean, de-duplicate, mask PII, tokenise and split into train/valid/test",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    build.add_argument("inputs", nargs="+", metavar="INPUT",
                       help="Kefu JSONL, CSV, Rasa NLU YAML, transcript JSONL or chatterbot YAML")
    build.add_argument("--out", required=True, metavar="DIR", help="output folder")
    build.add_argument("--seed", type=int, default=defaults.seed)
    build.add_argument("--lang", choices=("auto", *LANGUAGES), default=defaults.lang)
    build.add_argument("--valid", type=float, default=defaults.valid_fraction, help="valid fraction")
    build.add_argument("--test", type=float, default=defaults.test_fraction, help="test fraction")
    build.add_argument("--format", choices=FORMATS, default=None, help="input format (default: detect)")
    build.add_argument("--question-column", default=None, help="CSV question column (default: detect)")
    build.add_argument("--answer-column", default=None, help="CSV answer column (default: detect)")
    build.add_argument("--intent-column", default=None, help="CSV intent column (default: detect)")
    build.add_argument("--skip-bad", action="store_true", help="skip bad lines and count them")
    build.add_argument("--max-question-chars", type=int, default=defaults.max_question_chars)
    build.add_argument("--max-answer-chars", type=int, default=defaults.max_answer_chars)
    build.add_argument("--near-duplicate-threshold", type=float,
                       default=defaults.near_duplicate_threshold, help="Jaccard threshold")
    build.add_argument("--order-id-pattern", default=defaults.order_id_pattern,
                       help="regular expression of the shop's order numbers, masked as [ORDER_ID]")
    build.set_defaults(run=_build_corpus)

    generator = commands.add_parser("generator", help="train and try the response generator")
    generator_commands = generator.add_subparsers(dest="generator_command", metavar="ACTION", required=True)
    train = generator_commands.add_parser(
        "train", help="train a generator on a corpus folder (also under torchrun, data-parallel)")
    train.add_argument("--corpus", type=Path, required=True, metavar="DIR",
                       help="folder written by `kefu corpus build` (train.jsonl, valid.jsonl)")
    train.add_argument("--out", type=Path, required=True, metavar="MODEL", help="folder to save the model in")
    train.add_argument("--config", type=Path, default=None, metavar="FILE",
                       help="YAML or JSON: architecture, model, tokenizer, inputs, training, decoding")
    train.add_argument("--init-from", type=Path, default=None, metavar="MODEL",
                       help="continue training a saved generator (fine-tuning or resuming)")
    train.add_argument("--checkpoints", action="store_true",
                       help="save the best model so far in MODEL/checkpoint after each better epoch")
    train.set_defaults(run=_train_generator)
    reply = generator_commands.add_parser("reply", help="answer one question with a trained generator")
    reply.add_argument("model", type=Path, metavar="MODEL")
    reply.add_argument("question")
    reply.add_argument("--context", nargs="*", default=None, help="earlier turns, oldest first")
    reply.add_argument("--verbose", action="store_true", help="print the confidence to stderr")
    _add_decoding_options(reply)
    reply.set_defaults(run=_reply)
    compress = generator_commands.add_parser(
        "compress", help="a smaller generator folder: int8 weights and/or magnitude pruning")
    compress.add_argument("model", type=Path, metavar="MODEL")
    compress.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the compressed model")
    compress.add_argument("--int8", action="store_true",
                          help="store the weight matrices as int8, with one scale per output channel")
    compress.add_argument("--prune", type=float, default=0.0, metavar="SHARE",
                          help="set this share of each weight matrix to zero, smallest magnitudes first (e.g. 0.3)")
    compress.set_defaults(run=_compress_generator)

    evaluate = commands.add_parser("evaluate", help="score generators and baselines on a corpus test split")
    evaluate.add_argument("--corpus", type=Path, required=True, metavar="DIR")
    evaluate.add_argument("--model", type=Path, nargs="*", default=[], metavar="MODEL",
                          help="generator folders to score next to the baselines")
    evaluate.add_argument("--out", type=Path, default=Path("evaluation"), metavar="DIR",
                          help="where evaluation.{md,json,png} go")
    evaluate.add_argument("--limit", type=int, default=None, help="score only the first N test pairs")
    evaluate.add_argument("--latency-samples", type=int, default=100, help="replies timed one by one")
    evaluate.add_argument("--retrieval-k", type=int, default=None, metavar="K",
                          help="corpus answers a generator trained with retrieval reads (default: its own k)")
    _add_decoding_options(evaluate)
    evaluate.set_defaults(run=_evaluate)

    explain = commands.add_parser(
        "explain", help="why the bot answers a message (or answered a stored turn) as it does")
    explain.add_argument("model", type=Path, metavar="MODEL", help="a trained model archive (models/*.tar.gz)")
    explain.add_argument("message", nargs="?", default=None, metavar="MESSAGE", help="a customer message")
    explain.add_argument("--conversation", default=None, metavar="ID", help="a stored conversation ...")
    explain.add_argument("--turn", type=int, default=None, metavar="N", help="... and its Nth customer message")
    explain.add_argument("--endpoints", type=Path, default=Path("endpoints.yml"),
                         help="where the tracker store is configured (with --conversation)")
    explain.add_argument("--html", type=Path, default=None, metavar="FILE", help="also write a self-contained page")
    explain.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write the explanation as JSON")
    explain.add_argument("--samples", type=int, default=128, help="perturbed messages per word attribution")
    explain.add_argument("--seed", type=int, default=0)
    explain.set_defaults(run=_explain)
    return parser


def _command_lines(parser: argparse.ArgumentParser, prefix: str = "kefu") -> list[tuple[str, str]]:
    """(command, help) for every command below `parser`, nested ones included."""
    lines = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                lines.append((f"{prefix} {name}", helps.get(name) or ""))
                lines += _command_lines(subparser, f"{prefix} {name}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    lines = _command_lines(parser)
    width = max(len(command) for command, _ in lines)
    parser.epilog = "commands:\n" + "\n".join(f"  {command:<{width}}  {text}" for command, text in lines)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (CommandError, CorpusError, EncryptionKeyError) as error:
        print(f"kefu: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
