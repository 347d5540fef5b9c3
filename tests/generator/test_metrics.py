"""Reply metrics give the numbers a reader can check by hand, and say how they were computed."""

from __future__ import annotations

import random

import pytest

from components.generator.metrics import (
    PlattCalibration,
    bleu,
    char_ngrams,
    chrf,
    consensus_index,
    distinct_n,
    exact_match,
    expected_calibration_error,
    rouge_l,
    sentence_chrf,
    token_f1,
)


def test_word_overlap_metrics() -> None:
    assert token_f1("Your parcel ships today", "your parcel ships tomorrow") == pytest.approx(0.75)
    assert token_f1("", "") == 1.0 and token_f1("a", "") == 0.0
    assert rouge_l(["a b c d"], ["a x c d"]) == pytest.approx(75.0)
    assert rouge_l(["退款七天到账"], ["退款会在七天内到账"]) == pytest.approx(100 * 2 * 6 / (6 + 9))
    assert distinct_n(["a a a", "a b"], 1) == pytest.approx(100 * 2 / 5)
    assert distinct_n(["a a a", "a b"], 2) == pytest.approx(100 * 2 / 3)
    assert exact_match(["Hello!", "no"], ["hello !", "yes"]) == 50.0


def test_corpus_scores_print_their_signature() -> None:
    english = bleu(["the parcel ships today"], ["the parcel ships today"])
    assert english.score == pytest.approx(100.0) and "tok:13a" in english.signature
    assert "tok:zh" in bleu(["退款七天到账"], ["退款会在七天内到账"]).signature
    assert "nc:6" in chrf(["abc"], ["abd"]).signature and "version:" in chrf(["abc"], ["abd"]).signature


@pytest.mark.parametrize(("hypothesis", "reference"), [
    ("Your parcel ships today.", "your parcel will ship tomorrow"),
    ("退款会在七天内到账。", "退款七天内到账"),
    ("hello there", "goodbye"),
])
def test_sentence_chrf_is_sacrebleus(hypothesis: str, reference: str) -> None:
    from sacrebleu.metrics import CHRF

    ours = sentence_chrf(char_ngrams(hypothesis), char_ngrams(reference))
    assert 100 * ours == pytest.approx(CHRF().sentence_score(hypothesis, [reference]).score)


def test_the_consensus_is_the_reply_most_like_the_others() -> None:
    replies = ["We ship to most countries.", "Refunds reach your card in 5 days.",
               "Refunds reach your card within 5 days.", "Your refund reaches the card in 5 days."]
    assert consensus_index(replies) in (1, 2)
    assert consensus_index(["We ship abroad.", "Refunds take 5 days.", "Refunds take 5 days."]) == 1
    assert consensus_index(replies[:1]) == 0 and consensus_index([]) == 0


def test_calibration_recovers_a_known_relation_and_is_scored() -> None:
    rng = random.Random(0)
    log_probs = [rng.uniform(-4.0, 0.0) for _ in range(3000)]
    truth = PlattCalibration(slope=2.0, intercept=3.0)
    outcomes = [rng.random() < truth.probability(x) for x in log_probs]
    calibration = PlattCalibration.fit(log_probs, outcomes)
    assert calibration.slope == pytest.approx(2.0, abs=0.3)
    assert calibration.intercept == pytest.approx(3.0, abs=0.4)
    probabilities = [calibration.probability(x) for x in log_probs]
    assert expected_calibration_error(probabilities, outcomes) < 0.05
    assert expected_calibration_error([0.9] * len(outcomes), outcomes) > 0.2
    assert expected_calibration_error([1.0, 1.0], [False, False]) == pytest.approx(1.0)
    everything_good = PlattCalibration.fit([-1.0, -0.5], [True, True])
    assert 0.5 < everything_good.probability(-0.7) < 1.0
