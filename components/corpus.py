"""The corpus pipeline: load -> normalise -> mask PII -> filter -> de-duplicate ->
tokenise -> split -> write.

`build_corpus` turns customer-service data (Kefu JSONL, CSV, Rasa NLU YAML, chat
transcripts, chatterbot YAML) into `train/valid/test.jsonl` plus a report. The same
inputs and seed give byte-identical files.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from components.text import (
    DEFAULT_LANGUAGE,
    DEFAULT_ORDER_ID_PATTERN,
    LANGUAGES,
    PII_PLACEHOLDERS,
    PLACEHOLDER_PATTERN,
    PiiMasker,
    detect_language,
    language,
    normalise,
    tokenize,
)

FORMATS = ("kefu", "csv", "rasa", "transcript", "chatterbot")
SPLITS = ("train", "valid", "test")
QUESTION_COLUMNS = ("question", "instruction", "utterance", "query", "text", "user")
ANSWER_COLUMNS = ("answer", "response", "reply", "bot")
INTENT_COLUMNS = ("intent", "label", "category")
LENGTH_BUCKETS = (5, 10, 20, 50, 100, 200)


class CorpusError(ValueError):
    """Bad input; the message names the file, the line and the fix."""


@dataclass
class BuildConfig:
    """Every tunable of `kefu corpus build`, with its default."""

    seed: int = 13
    lang: str = "auto"  # auto | en | zh
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    input_format: str | None = None  # one of FORMATS; None detects it per file
    question_column: str | None = None  # CSV; None tries QUESTION_COLUMNS
    answer_column: str | None = None  # CSV; None tries ANSWER_COLUMNS
    intent_column: str | None = None  # CSV; None tries INTENT_COLUMNS
    skip_bad: bool = False  # skip and count bad lines instead of stopping
    max_question_chars: int = 1000
    max_answer_chars: int = 4000
    near_duplicate_threshold: float = 0.9  # Jaccard similarity of question shingles
    minhash_permutations: int = 128
    order_id_pattern: str = DEFAULT_ORDER_ID_PATTERN

    def __post_init__(self) -> None:
        if self.lang not in ("auto", *LANGUAGES):
            raise CorpusError(f'--lang must be auto or one of {", ".join(LANGUAGES)}, not "{self.lang}"')
        if self.input_format not in (None, *FORMATS):
            raise CorpusError(f'--format must be one of {", ".join(FORMATS)}, not "{self.input_format}"')
        if not (0 <= self.valid_fraction < 1 and 0 <= self.test_fraction < 1
                and self.valid_fraction + self.test_fraction < 1):
            raise CorpusError("--valid and --test must be fractions that leave room for train")
        if not 0 < self.near_duplicate_threshold <= 1:
            raise CorpusError("--near-duplicate-threshold must be in (0, 1]")


@dataclass(slots=True)
class Pair:
    question: str
    answer: str  # empty for question-only sources (Rasa NLU data)
    intent: str | None
    lang: str | None
    context: list[str]


@dataclass(frozen=True)
class BadLine:
    where: str  # "file line N"
    problem: str


Record = Pair | BadLine


# ---- reading ----------------------------------------------------------------


def _decoded_lines(path: Path) -> Iterator[tuple[int, str | BadLine]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
                yield number, text.removeprefix("\ufeff") if number == 1 else text
            except UnicodeDecodeError as error:
                yield number, BadLine(
                    f"{path} line {number}",
                    f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1});"
                    " save the file as UTF-8",
                )


def _text_field(value: Any, label: str, where: str) -> str | BadLine:
    """`value` if it is a non-empty string; `label` names the field in errors."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return BadLine(where, f'{label} is {"missing" if value is None else "empty"}')
    if not isinstance(value, str):
        return BadLine(where, f"{label} must be a string, not {type(value).__name__}")
    return value


def _json_lines(path: Path, each: str) -> Iterator[tuple[str, Any]]:
    """("file line N", parsed value) for each non-empty line; a BadLine stands in for
    a line that is not UTF-8 or not JSON."""
    for number, line in _decoded_lines(path):
        where = f"{path} line {number}"
        if isinstance(line, BadLine):
            yield where, line
        elif line.strip():
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as error:
                yield where, BadLine(where, f"not valid JSON ({error.msg}); each line must be {each}")


def read_kefu_jsonl(path: Path) -> Iterator[Record]:
    """Kefu's corpus schema: question, answer, optional intent, lang, context."""
    for where, row in _json_lines(path, "one JSON object"):
        if isinstance(row, BadLine):
            yield row
            continue
        if not isinstance(row, dict):
            yield BadLine(where, "must be a JSON object with \"question\" and \"answer\"")
            continue
        question = _text_field(row.get("question"), '"question"', where)
        answer = _text_field(row.get("answer"), '"answer"', where)
        context = row.get("context") or []
        problem = next((v for v in (question, answer) if isinstance(v, BadLine)), None)
        if problem is None and not (
            isinstance(context, list) and all(isinstance(turn, str) for turn in context)
        ):
            problem = BadLine(where, '"context" must be a list of strings')
        if problem is None and row.get("lang") not in (None, *LANGUAGES):
            problem = BadLine(where, f'"lang" must be one of {", ".join(LANGUAGES)}, not {row.get("lang")!r}')
        if problem is not None:
            yield problem
            continue
        yield Pair(question, answer, row.get("intent") or None, row.get("lang"), context)


def _pick_column(header: list[str], chosen: str | None, candidates: tuple[str, ...],
                 flag: str, path: Path, required: bool) -> str | None:
    if chosen is not None:
        if chosen not in header:
            raise CorpusError(f'{path}: no column "{chosen}" (columns: {", ".join(header)}); fix {flag}')
        return chosen
    lowered = {name.lower(): name for name in header}
    found = next((lowered[c] for c in candidates if c in lowered), None)
    if found is None and required:
        raise CorpusError(
            f"{path}: none of the columns {', '.join(header)} looks like "
            f"{flag.removeprefix('--').removesuffix('-column')}; name it with {flag}"
        )
    return found


# Bytes that were not UTF-8, as Python's "surrogateescape" decoding keeps them.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def read_csv(path: Path, config: BuildConfig) -> Iterator[Record]:
    """CSV (or TSV) with a header; the question/answer/intent columns are chosen
    by flag or found by their usual names."""
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t" if path.suffix == ".tsv" else ",")
        header = next(rows, None)
        if not header:
            raise CorpusError(f"{path}: the file is empty; a CSV needs a header line")
        header[0] = header[0].removeprefix("\ufeff")
        q_name = _pick_column(header, config.question_column, QUESTION_COLUMNS, "--question-column", path, True)
        a_name = _pick_column(header, config.answer_column, ANSWER_COLUMNS, "--answer-column", path, True)
        i_name = _pick_column(header, config.intent_column, INTENT_COLUMNS, "--intent-column", path, False)
        q_at, a_at = header.index(q_name), header.index(a_name)
        i_at = header.index(i_name) if i_name else None
        line = rows.line_num + 1
        for row in rows:
            where, line = f"{path} line {line}", rows.line_num + 1
            if not row:
                continue
            if len(row) != len(header):
                yield BadLine(where, f"has {len(row)} fields, the header has {len(header)}; quote fields with commas")
                continue
            if any(_UNDECODABLE.search(cell) for cell in row):
                yield BadLine(where, "not valid UTF-8; save the file as UTF-8")
                continue
            question = _text_field(row[q_at], f'column "{q_name}"', where)
            answer = _text_field(row[a_at], f'column "{a_name}"', where)
            if isinstance(question, BadLine) or isinstance(answer, BadLine):
                yield question if isinstance(question, BadLine) else answer
                continue
            yield Pair(question, answer, (row[i_at].strip() or None) if i_at is not None else None, None, [])


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise CorpusError(f"{path}: not valid UTF-8 (byte {error.start}); save the file as UTF-8") from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path} line {mark.line + 1}" if mark else str(path)
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise CorpusError(f"{where}: {problem}; fix the YAML syntax there") from error


_ENTITY_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


def read_rasa_nlu(path: Path) -> Iterator[Record]:
    """Rasa NLU YAML: each example becomes a question (no answer) with its intent."""
    document = _load_yaml(path) or {}
    for block in document.get("nlu") or []:
        if not isinstance(block, dict) or "intent" not in block:
            continue
        examples = block.get("examples") or ""
        if not isinstance(examples, str):
            yield BadLine(f"{path} intent {block['intent']}", '"examples" must be a block of "- " lines')
            continue
        for line in examples.splitlines():
            text = line.strip().removeprefix("- ").strip()
            if text:
                yield Pair(_ENTITY_ANNOTATION.sub(r"\1", text), "", str(block["intent"]), None, [])


def read_chatterbot(path: Path) -> Iterator[Record]:
    """chatterbot YAML: each turn answers the one before it; earlier turns are context."""
    document = _load_yaml(path) or {}
    categories = document.get("categories") or []
    intent = str(categories[0]) if categories else None
    for number, conversation in enumerate(document.get("conversations") or [], start=1):
        if not isinstance(conversation, list) or len(conversation) < 2:
            yield BadLine(f"{path} conversation {number}", "needs at least two turns")
            continue
        turns = [str(turn) for turn in conversation]
        for index in range(len(turns) - 1):
            yield Pair(turns[index], turns[index + 1], intent, None, turns[:index])


def read_transcripts(path: Path) -> Iterator[Record]:
    """One conversation per line: {"turns": [{"role": "user"|"bot", "text": ...}, ...]}.
    Each bot reply answers the user turns just before it."""
    for where, conversation in _json_lines(path, "one conversation"):
        if isinstance(conversation, BadLine):
            yield conversation
            continue
        turns = conversation.get("turns") if isinstance(conversation, dict) else conversation
        if not isinstance(turns, list) or not all(
            isinstance(t, dict) and t.get("role") in ("user", "bot") and isinstance(t.get("text"), str)
            for t in turns
        ):
            yield BadLine(where, 'needs "turns": a list of {"role": "user" or "bot", "text": "..."}')
            continue
        history: list[str] = []
        pending_user: list[str] = []
        for turn in turns:
            if turn["role"] == "user":
                pending_user.append(turn["text"])
                continue
            if pending_user:
                yield Pair(" ".join(pending_user), turn["text"], turn.get("intent"), None, list(history))
                history.append(" ".join(pending_user))
                pending_user = []
            history.append(turn["text"])


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".yml", ".yaml"):
        document = _load_yaml(path)
        if isinstance(document, dict) and "nlu" in document:
            return "rasa"
        if isinstance(document, dict) and "conversations" in document:
            return "chatterbot"
        raise CorpusError(f'{path}: a YAML file needs "nlu:" (Rasa) or "conversations:" (chatterbot); or pass --format')
    if suffix in (".jsonl", ".json", ".ndjson"):
        for number, line in _decoded_lines(path):
            if isinstance(line, BadLine) or not line.strip():
                continue
            try:
                first = json.loads(line)
            except json.JSONDecodeError:
                raise CorpusError(f"{path} line {number}: not valid JSON; cannot tell the format") from None
            if isinstance(first, dict) and "question" in first:
                return "kefu"
            if isinstance(first, list) or (isinstance(first, dict) and "turns" in first):
                return "transcript"
            raise CorpusError(
                f'{path} line {number}: neither "question" (Kefu corpus) nor "turns" (transcript); pass --format'
            )
        raise CorpusError(f"{path}: the file is empty")
    raise CorpusError(f"{path}: unknown file type {suffix or '(none)'}; pass --format ({', '.join(FORMATS)})")


def read_records(path: Path, config: BuildConfig) -> Iterator[Record]:
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    kind = config.input_format or detect_format(path)
    if kind == "csv":
        return read_csv(path, config)
    return {"kefu": read_kefu_jsonl, "rasa": read_rasa_nlu, "chatterbot": read_chatterbot,
            "transcript": read_transcripts}[kind](path)


# ---- cleaning and de-duplication ---------------------------------------------------


class _Cleaner:
    """Normalises and masks texts; repeated texts (templated answers) are done once."""

    def __init__(self, config: BuildConfig) -> None:
        self.masker = PiiMasker(config.order_id_pattern)
        self.pii: Counter = Counter()
        self.changed = 0
        self._clean = lru_cache(maxsize=200_000)(self._clean_uncached)

    def _clean_uncached(self, text: str) -> tuple[str, tuple[tuple[str, int], ...], bool]:
        normalised = normalise(text)
        masked, found = self.masker.mask_counted(normalised)
        return masked, tuple(sorted(found.items())), normalised != text

    def __call__(self, text: str) -> str:
        masked, found, changed = self._clean(text)
        self.pii.update(dict(found))
        self.changed += changed
        return masked


_WORD = re.compile(rf"{PLACEHOLDER_PATTERN.pattern}|\w+")


def shingles(text: str, lang: str) -> set[str]:
    """Word unigrams and bigrams, or character bigrams for a language written without spaces."""
    if language(lang).unspaced:
        chars = [c for c in text.lower() if not c.isspace()]
        return {"".join(chars[i : i + 2]) for i in range(max(1, len(chars) - 1))}
    words = _WORD.findall(text.lower())
    if not words:  # only symbols or emoji: the text itself is the one shingle
        return {text.lower()}
    return set(words) | {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)}


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


def near_duplicate_groups(pairs: list[Pair], threshold: float, permutations: int) -> list[list[int]]:
    """Indices of pairs grouped by near-duplicate questions (MinHash LSH candidates,
    confirmed by their exact Jaccard similarity), each group in input order."""
    from datasketch import MinHash, MinHashLSH
    from datasketch.hashfunc import sha1_hash32

    # Questions with the same shingles (differing only in case or punctuation) are
    # one item, so each distinct shingle set is hashed and compared once.
    items: dict[tuple[str, frozenset], int] = {}
    pair_item = []
    for pair in pairs:
        lang = pair.lang or DEFAULT_LANGUAGE
        key = (lang, frozenset(shingles(pair.question, lang)))
        pair_item.append(items.setdefault(key, len(items)))
    keys = list(items)
    # Shingles recur across questions, so each is hashed once.
    shingle_hashes: dict[str, int] = {}
    for _, found in keys:
        for shingle in found:
            if shingle not in shingle_hashes:
                shingle_hashes[shingle] = sha1_hash32(shingle.encode("utf-8"))
    # The classic (a*h + b mod p) permutations: twice as fast here as datasketch's newer default.
    signatures = MinHash.bulk([sorted(found) for _, found in keys], num_perm=permutations,
                              hashfunc=shingle_hashes.__getitem__, scheme="legacy")
    same_group = _UnionFind(len(keys))
    for lang in sorted({lang for lang, _ in keys}):
        lsh = MinHashLSH(threshold=threshold, num_perm=permutations)
        members = [i for i, (item_lang, _) in enumerate(keys) if item_lang == lang]
        for i in members:
            lsh.insert(i, signatures[i], check_duplication=False)
        for i in members:
            for j in lsh.query(signatures[i]):
                if j <= i or same_group.find(i) == same_group.find(j):
                    continue
                a, b = keys[i][1], keys[j][1]
                if len(a & b) >= threshold * len(a | b):
                    same_group.union(i, j)
    groups: dict[int, list[int]] = defaultdict(list)
    for index, item in enumerate(pair_item):
        groups[same_group.find(item)].append(index)
    return list(groups.values())


# ---- splitting ---------------------------------------------------------------


def split_groups(groups: list[list[int]], pairs: list[Pair], config: BuildConfig) -> dict[str, list[int]]:
    """Whole groups go to one split; stratified by intent, seeded."""
    fractions = {"train": 1 - config.valid_fraction - config.test_fraction,
                 "valid": config.valid_fraction, "test": config.test_fraction}
    by_intent: dict[str, list[list[int]]] = defaultdict(list)
    for group in groups:
        by_intent[pairs[group[0]].intent or ""].append(group)
    assigned: dict[str, list[int]] = {name: [] for name in SPLITS}
    for intent in sorted(by_intent):
        stratum = by_intent[intent]
        random.Random(f"{config.seed}:{intent}").shuffle(stratum)
        total = sum(len(group) for group in stratum)
        filled = dict.fromkeys(SPLITS, 0)
        for group in stratum:
            split = max(SPLITS, key=lambda name: fractions[name] * total - filled[name])
            filled[split] += len(group)
            assigned[split].extend(group)
    return {name: sorted(indices) for name, indices in assigned.items()}


# ---- files named in a component's config ---------------------------------------


def corpus_paths(patterns: str | list[str]) -> list[Path]:
    """The files matching glob patterns such as `data/corpus/*.jsonl`, sorted."""
    patterns = [patterns] if isinstance(patterns, str) else list(patterns or [])
    return sorted(Path(p) for pattern in patterns for p in glob.glob(pattern))


def file_digest(paths: list[Path]) -> str:
    """One hash of the files' names and contents, for a component's fingerprint."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


# ---- the whole build -----------------------------------------------------------


@dataclass
class BuildReport:
    inputs: list[str]
    config: dict[str, Any]
    stages: dict[str, Any] = field(default_factory=dict)
    bad_lines: list[str] = field(default_factory=list)
    pii_masked: dict[str, int] = field(default_factory=dict)
    splits: dict[str, Any] = field(default_factory=dict)
    vocabulary_size: int = 0
    length_histogram: dict[str, dict[str, int]] = field(default_factory=dict)


def _bucket(length: int) -> str:
    lower = 0
    for upper in LENGTH_BUCKETS:
        if length < upper:
            return f"{lower}-{upper - 1}"
        lower = upper
    return f"{LENGTH_BUCKETS[-1]}+"


def load_clean_pairs(paths: Iterable[Path], config: BuildConfig, report: BuildReport) -> list[Pair]:
    """Read every input and normalise, mask and filter each pair as it arrives, so a
    large input is never held twice."""
    cleaner = _Cleaner(config)
    languages: Counter = Counter()
    dropped: Counter = Counter()
    read = 0
    kept = []
    for path in paths:
        for record in read_records(Path(path), config):
            if isinstance(record, BadLine):
                if not config.skip_bad:
                    raise CorpusError(f"{record.where}: {record.problem} (or pass --skip-bad)")
                report.bad_lines.append(f"{record.where}: {record.problem}")
                continue
            read += 1
            pair = record
            pair.question = cleaner(pair.question)
            pair.answer = cleaner(pair.answer)
            pair.context = [cleaned for cleaned in map(cleaner, pair.context) if cleaned]
            if config.lang != "auto":
                pair.lang = config.lang
            elif pair.lang is None:
                pair.lang = detect_language(pair.question + " " + pair.answer)
            languages[pair.lang] += 1
            if not pair.question:
                dropped["empty question"] += 1
            elif len(pair.question) > config.max_question_chars:
                dropped["question too long"] += 1
            elif len(pair.answer) > config.max_answer_chars:
                dropped["answer too long"] += 1
            else:
                kept.append(pair)
    report.stages["read"] = {"pairs": read, "bad_lines_skipped": len(report.bad_lines)}
    report.stages["normalise"] = {"texts changed": cleaner.changed}
    report.stages["language"] = dict(sorted(languages.items()))
    report.stages["mask_pii"] = {"placeholders inserted": sum(cleaner.pii.values())}
    report.pii_masked = {kind: cleaner.pii.get(kind, 0) for kind in PII_PLACEHOLDERS}
    report.stages["filter"] = {"kept": len(kept), **dict(sorted(dropped.items()))}
    return kept


def deduplicate(pairs: list[Pair], config: BuildConfig, report: BuildReport) -> tuple[list[Pair], list[list[int]]]:
    # Answers recur (templated replies): fold each distinct one once, so the keys share it.
    fold = lru_cache(maxsize=100_000)(str.casefold)
    seen: set[tuple] = set()
    unique = []
    for pair in pairs:
        key = (pair.question.casefold(), fold(pair.answer), tuple(pair.context))
        if key not in seen:
            seen.add(key)
            unique.append(pair)
    report.stages["exact_dedup"] = {"removed": len(pairs) - len(unique), "kept": len(unique)}

    groups = near_duplicate_groups(unique, config.near_duplicate_threshold, config.minhash_permutations)
    kept: list[Pair] = []
    kept_groups: list[list[int]] = []
    for group in groups:
        answers: dict[str, int] = {}
        for index in group:
            answers.setdefault(fold(unique[index].answer), index)
        kept_groups.append(list(range(len(kept), len(kept) + len(answers))))
        kept.extend(unique[index] for index in sorted(answers.values()))
    multi = [g for g in kept_groups if len(g) > 1]
    report.stages["near_dedup"] = {
        "collapsed": len(unique) - len(kept), "kept": len(kept),
        "groups with different answers": len(multi), "pairs in those groups": sum(map(len, multi)),
        "threshold": config.near_duplicate_threshold,
    }
    return kept, kept_groups


def split_corpus(inputs: Iterable[str | Path], config: BuildConfig | None = None
                 ) -> tuple[list[Pair], dict[str, list[int]], BuildReport]:
    """Read, clean, de-duplicate and split, in memory: the pairs and each split's indices."""
    config = config or BuildConfig()
    paths = [Path(p) for p in inputs]
    report = BuildReport(inputs=[str(p) for p in paths], config=asdict(config))
    pairs = load_clean_pairs(paths, config, report)
    pairs, groups = deduplicate(pairs, config, report)
    return pairs, split_groups(groups, pairs, config), report


def build_corpus(inputs: Iterable[str | Path], out_dir: str | Path,
                 config: BuildConfig | None = None) -> BuildReport:
    """Run the whole pipeline and write DIR/{train,valid,test}.jsonl and the reports."""
    pairs, splits, report = split_corpus(inputs, config)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocabulary: set[str] = set()

    @lru_cache(maxsize=100_000)
    def tokens_of(text: str, lang: str) -> tuple[str, ...]:
        tokens = tuple(tokenize(text, lang))
        vocabulary.update(tokens)
        return tokens

    histogram = {"question": Counter(), "answer": Counter()}
    token_count = 0
    for name, indices in splits.items():
        intents: Counter = Counter()
        languages: Counter = Counter()
        with (out / f"{name}.jsonl").open("w", encoding="utf-8", newline="\n") as handle:
            for index in indices:
                pair = pairs[index]
                question_tokens = tokens_of(pair.question, pair.lang)
                answer_tokens = tokens_of(pair.answer, pair.lang) if pair.answer else ()
                token_count += len(question_tokens) + len(answer_tokens)
                histogram["question"][_bucket(len(question_tokens))] += 1
                if pair.answer:
                    histogram["answer"][_bucket(len(answer_tokens))] += 1
                intents[pair.intent or "(none)"] += 1
                languages[pair.lang] += 1
                row = {"question": pair.question, "answer": pair.answer, "intent": pair.intent,
                       "lang": pair.lang, "context": pair.context,
                       "question_tokens": list(question_tokens), "answer_tokens": list(answer_tokens)}
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        report.splits[name] = {"pairs": len(indices), "languages": dict(sorted(languages.items())),
                               "intents": dict(sorted(intents.items()))}
    bucket_order = [_bucket(n) for n in (0, *LENGTH_BUCKETS)]
    report.length_histogram = {
        kind: {bucket: counts[bucket] for bucket in bucket_order} for kind, counts in histogram.items()
    }
    report.vocabulary_size = len(vocabulary)
    report.stages["tokenise"] = {"tokens": token_count, "vocabulary": len(vocabulary)}
    report.stages["split"] = {name: len(indices) for name, indices in splits.items()}
    (out / "report.json").write_text(json.dumps(asdict(report), ensure_ascii=False, indent=2) + "\n",
                                     encoding="utf-8")
    (out / "report.md").write_text(render_report(report), encoding="utf-8")
    return report


def render_report(report: BuildReport) -> str:
    lines = ["# Corpus build report", "", "Inputs:", *[f"- `{p}`" for p in report.inputs], "",
             f"Seed {report.config['seed']}; valid {report.config['valid_fraction']}, "
             f"test {report.config['test_fraction']}; near-duplicate Jaccard threshold "
             f"{report.config['near_duplicate_threshold']} ({report.config['minhash_permutations']} "
             "MinHash permutations).", "", "## Stages", "", "| stage | counts |", "|---|---|"]
    for stage, counts in report.stages.items():
        shown = ", ".join(f"{k}: {v}" for k, v in counts.items()) if isinstance(counts, dict) else counts
        lines.append(f"| {stage} | {shown} |")
    lines += ["", "## PII masked", "", "| placeholder | count |", "|---|---|",
              *[f"| `{kind}` | {count} |" for kind, count in report.pii_masked.items()]]
    lines += ["", "## Splits", "", "| split | pairs | languages |", "|---|---|---|",
              *[f"| {name} | {s['pairs']} | {', '.join(f'{k}: {v}' for k, v in s['languages'].items())} |"
                for name, s in report.splits.items()]]
    intents = sorted({i for s in report.splits.values() for i in s["intents"]})
    lines += ["", "## Pairs per intent", "", "| intent | " + " | ".join(SPLITS) + " |",
              "|---|" + "---|" * len(SPLITS)]
    lines += [f"| {intent} | " + " | ".join(str(report.splits[s]["intents"].get(intent, 0)) for s in SPLITS)
              + " |" for intent in intents]
    lines += ["", f"Vocabulary: {report.vocabulary_size} distinct tokens.", "",
              "## Length in tokens", "", "| tokens | questions | answers |", "|---|---|---|"]
    lines += [f"| {bucket} | {report.length_histogram['question'][bucket]} | "
              f"{report.length_histogram['answer'][bucket]} |" for bucket in report.length_histogram["question"]]
    if report.bad_lines:
        lines += ["", f"## Bad lines skipped ({len(report.bad_lines)})", "",
                  *[f"- {line}" for line in report.bad_lines[:100]]]
        if len(report.bad_lines) > 100:
            lines.append(f"- ... and {len(report.bad_lines) - 100} more (all in report.json)")
    return "\n".join(lines) + "\n"
