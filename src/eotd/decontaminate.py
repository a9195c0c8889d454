"""Near-duplicate matching between training questions and an evaluation set (n-gram containment).

Every evaluation uses this: a student trained on GSM-Symbolic (whose templates were written from GSM8K test
questions) or on GSM8K train must not be scored on near-copies of its training questions as if they were unseen.
Score of an evaluation question = max over train items of |ngrams(eval) & ngrams(train)| / |ngrams(eval)| on
normalize()d tokens; items scoring >= threshold are dropped from the headline accuracy and reported separately.

Defaults n=4, threshold=0.35, chosen by measurement (reasoning-gym 0.1.25, load_gsm_symbolic(2000, seed=0,
split="train"/"test", by="template") = 4000 items over all 85 templates, vs shared/data). Ground truth: each template
maps to a distinct GSM8K test item (85 items; template 0 -> "Emily can peel 6 shrimp...", gsm8k_test-989).
Templates swap names, nouns and number words ("three times" -> "3 times", "half" -> "50%"), so long n-grams break:

  n, names, th   recall/85  GSM8K-test others  SVAMP  ASDiv  MultiArith  GSM8K-train vs sym  GSM8K train>test
  8 keep 0.50        49            0             0      0        0              0                  3
  6 keep 0.35        63            0             0      0        0              0                  7
  5 keep 0.30        77            0             0      0        0              0                 14
  4 keep 0.35        78            0             0      0        0              0                 14   <- chosen
  4 keep 0.30        81            0             0      0        0              2                 26
  4 mask 0.35        81            0             1      0        0             11                 37
  3 keep 0.40        81            0             0      0        0              5                 24
(columns after recall: flagged items among unrelated pairs; all sets vs the 4000 GSM-Symbolic items except the
last, GSM8K train vs GSM8K test.) Masking number words raised recall at every n (n=8/0.5: 45 -> 49; n=4/0.3: 78 -> 81).
With n=4 the highest score of any unrelated pair is 0.33 (GSM8K test non-template items 0.26, SVAMP 0.20,
ASDiv 0.27, MultiArith 0.16), so 0.35 sits above all of them; the 7 missed templates score below it (nouns and
number phrasing all changed: "three quarters as many" -> "0.5 as many", Facebook -> TikTok).
Masking capitalised words (names) raises recall by ~3 but multiplies false matches (GSM8K train vs sym 0 -> 11,
GSM8K train>test 14 -> 37), so it is off (normalize(mask_names=True) keeps it measurable).

Counts at the defaults (tests/benchmarks/bench_decontaminate.py): GSM-Symbolic train 2000 (68 templates) ->
gsm8k_test 62, gsm_hard 62; test 2000 (17 templates) -> 16 / 16; all 4000 -> 78 / 78; svamp, asdiv, multiarith 0;
GSM-Symbolic train vs its test split 0 (max 0.13). GSM8K train -> gsm8k_test 14, gsm_hard 14 (known near-copies:
"A plane travels 1200 miles..." 0.91), asdiv 43 (true copies, e.g. the science field-trip vans item 0.91),
multiarith 3 (the restaurant template, 0.65), svamp 4 (short questions sharing phrases, 0.35-0.41: short
questions have few n-grams, so containment is noisier for them). Speed: 11.5k train questions indexed in ~1.7 s,
~10k queries/s on this 2-core machine.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

from eotd.data import Problem

NUM = "<num>"
NAME = "<name>"
DEFAULT_N = 4
DEFAULT_THRESHOLD = 0.35

# A number with its grouping, decimals and fraction bar: "$1,234.50" -> "$<num>", "3/4" -> "<num>", "50%" -> "<num>%".
_NUMBER = re.compile(r"\d+(?:[.,/]\d+)*")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*|\x00")
_SENTENCE_END = re.compile(r"[.!?:;\"]\s*$")
# Capitalised words that start sentences without being names (mask_names keeps them).
_FUNCTION_WORDS = frozenset("""
a an the this that these those there then if how what which who whom whose when where why while after before during
in on at of for from to by with without into over under each every all both some any no not one two three four five
six seven eight nine ten half he she it they we you i his her its their our your my him them us me so but and or
also finally first next last since because as once until later today yesterday tomorrow together instead however
meanwhile assume given suppose let find calculate mr mrs ms dr miss is are was were do does did can could will would
""".split())


# Number words read as numbers (GSM-Symbolic writes "three times", "2 times", "50%" where GSM8K wrote "three
# times", "twice", "half"); "twice"/"thrice" become "<num> times".
_NUMBER_WORDS: dict[str, tuple[str, ...]] = {w: (NUM,) for w in """
zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen
eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million billion half halves
quarter quarters third thirds fourth fourths fifth fifths dozen dozens
""".split()} | {"twice": (NUM, "times"), "thrice": (NUM, "times"), "double": (NUM, "times"), "triple": (NUM, "times")}


def _starts_sentence(text: str, pos: int) -> bool:
    return pos == 0 or bool(_SENTENCE_END.search(text[max(0, pos - 3):pos]))


def normalize(text: str, mask_names: bool = False) -> list[str]:
    """Lowercase word tokens, every number masked to "<num>", punctuation dropped.

    mask_names=True also masks capitalised words that do not start a sentence to "<name>" (measured: it does not
    help, see the module docstring, so it is off by default).
    """
    text = _NUMBER.sub("\x00", text)
    tokens: list[str] = []
    for m in _WORD.finditer(text):
        word = m.group()
        if word == "\x00":
            tokens.append(NUM)
            continue
        word = word.replace("'", "")
        low = word.lower()
        if low in _NUMBER_WORDS:
            tokens.extend(_NUMBER_WORDS[low])
            continue
        if mask_names and word[0].isupper() \
                and not (low in _FUNCTION_WORDS and _starts_sentence(text, m.start())):
            tokens.append(NAME)
        else:
            tokens.append(word.lower())
    # "three quarters", "twenty-five", "$ 1 200" -> one placeholder, as "0.75" / "25" give.
    return [t for i, t in enumerate(tokens) if not (t == NUM and i and tokens[i - 1] == NUM)]


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """All contiguous n-grams of tokens (empty when there are fewer than n tokens)."""
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


class OverlapIndex:
    """Inverted index n-gram -> train items, answering max containment of an evaluation question over the train set.

    Train questions whose n-gram sets are identical (GSM-Symbolic instances differing only in numbers) are stored
    once, under the first such train position, so the index stays small for large template-generated samples.
    """

    def __init__(self, train_questions: Iterable[str], n: int = DEFAULT_N, mask_names: bool = False):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n, self.mask_names = n, mask_names
        self.size = 0
        self._postings: dict[tuple[str, ...], list[int]] = {}
        seen: dict[frozenset, int] = {}
        for i, question in enumerate(train_questions):
            self.size += 1
            grams = frozenset(ngrams(normalize(question, mask_names), n))
            if not grams or grams in seen:
                continue
            seen[grams] = i
            for g in grams:
                self._postings.setdefault(g, []).append(i)
        self.unique = len(seen)

    def score(self, question: str) -> tuple[float, int | None]:
        """(max over train items of |ngrams(q) & ngrams(train)| / |ngrams(q)|, position of that train item).

        (0.0, None) when the question shares no n-gram with the train set or has fewer than n tokens.
        Ties go to the earliest train position.
        """
        grams = ngrams(normalize(question, self.mask_names), self.n)
        if not grams:
            return 0.0, None
        counts: Counter[int] = Counter()
        for g in grams:
            posting = self._postings.get(g)
            if posting:
                counts.update(posting)
        if not counts:
            return 0.0, None
        best, hits = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return hits / len(grams), best


def find_overlaps(train: Sequence[Problem], evaluation: Sequence[Problem], n: int = DEFAULT_N,
                  threshold: float = DEFAULT_THRESHOLD) -> list[dict]:
    """One row per evaluation item, in order: {"id", "overlap", "train_id", "contaminated": overlap >= threshold}.

    The threshold and n travel in every row ("threshold", "ngram") so report() can state them.
    """
    index = OverlapIndex((p.question for p in train), n)
    rows = []
    for p in evaluation:
        overlap, best = index.score(p.question)
        rows.append({"id": p.id, "overlap": overlap, "train_id": None if best is None else train[best].id,
                     "contaminated": overlap >= threshold, "threshold": threshold, "ngram": n})
    return rows


def near_duplicates_of(evaluation: Sequence[Problem], candidates: Sequence[Problem], n: int = DEFAULT_N,
                       threshold: float = DEFAULT_THRESHOLD) -> set[str]:
    """Ids of the candidate training questions in which some evaluation item is found (find_overlaps' measure, each
    candidate taken alone as the training side): what a training set must leave out so that find_overlaps flags
    no evaluation item."""
    postings: dict[tuple[str, ...], list[int]] = {}
    for i, candidate in enumerate(candidates):
        for gram in ngrams(normalize(candidate.question), n):
            postings.setdefault(gram, []).append(i)
    found: set[str] = set()
    for item in evaluation:
        grams = ngrams(normalize(item.question), n)
        counts = Counter(i for gram in grams for i in postings.get(gram, ()))
        found |= {candidates[i].id for i, hits in counts.items() if hits / len(grams) >= threshold}
    return found


def split_clean(evaluation: Sequence[Problem], overlaps: Sequence[dict]) -> tuple[list[Problem], list[Problem]]:
    """(clean, overlapping) evaluation items, each in evaluation order; overlaps must be find_overlaps' rows."""
    flags = {row["id"]: row["contaminated"] for row in overlaps}
    missing = [p.id for p in evaluation if p.id not in flags]
    if missing or len(flags) != len(evaluation):
        raise ValueError(f"overlaps do not match the evaluation set ({len(overlaps)} rows for {len(evaluation)} "
                         f"items; missing ids {missing[:3]})")
    clean = [p for p in evaluation if not flags[p.id]]
    overlapping = [p for p in evaluation if flags[p.id]]
    return clean, overlapping


def report(train_name: str, eval_name: str, overlaps: Sequence[dict]) -> dict:
    """Summary: {"train_set", "eval_set", "n_eval", "n_overlap", "threshold", "ngram"}."""
    threshold = overlaps[0]["threshold"] if overlaps else DEFAULT_THRESHOLD
    ngram = overlaps[0]["ngram"] if overlaps else DEFAULT_N
    return {"train_set": train_name, "eval_set": eval_name, "n_eval": len(overlaps),
            "n_overlap": sum(bool(row["contaminated"]) for row in overlaps), "threshold": threshold,
            "ngram": ngram}
