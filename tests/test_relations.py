"""The relational EoT writer and the question-form tagger against a careful reader's relations
(tests/fixtures/relational_golden.jsonl: benchmark questions with the relation a person writes, its schema and form,
traps included: perspective verbs, "the rest", "how many more", "at first", distractor numbers)."""
import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from eotd import relations
from eotd.answers import numbers_equal
from eotd.equations import inverts, solve_eot

GOLDEN = [json.loads(line) for line in (Path(__file__).parent / "fixtures" / "relational_golden.jsonl").open()]
_WORD_VALUES = {"twice": 2, "half": Fraction(1, 2)}


def _numbers(relation: str) -> list[Fraction]:
    """The text's numbers a careful reader's relation uses ('x - 5 = 12' -> [5, 12])."""
    return [Fraction(n) for n in re.findall(r"\d+(?:\.\d+)?", relation)]


@pytest.mark.parametrize("case", GOLDEN, ids=[f"{c['source']}-{c['id']}" for c in GOLDEN])
def test_a_rule_writes_the_readers_relation_or_declines(case):
    """Written, the relation solves to the reader's answer (a wrong reading solves to another number) and inverts
    exactly when the reader's does; the form tag never contradicts the reader."""
    text = relations.relational_eot(case["question"], _numbers(case["relation"]))
    if text is not None:
        result = solve_eot(text)
        assert result.reason == "ok" and numbers_equal(result.answer, case["answer"]), text
        assert inverts(text) == (case["form"] == "inverse"), text
    assert relations.question_form(case["question"]) in (case["form"], "unknown")


def test_the_rules_read_a_share_of_the_readers_inverse_relations():
    inverse = [c for c in GOLDEN if c["form"] == "inverse"]
    written = [c for c in inverse if relations.relational_eot(c["question"], _numbers(c["relation"])) is not None]
    tagged = [c for c in inverse if relations.question_form(c["question"]) == "inverse"]
    assert len(inverse) >= 40 and len(written) >= 0.25 * len(inverse) and len(tagged) >= 0.4 * len(inverse), \
        (len(inverse), len(written), len(tagged))


def test_golden_set_covers_every_benchmark_and_the_traps():
    by_source = {s: sum(c["source"] == s for c in GOLDEN) for s in ("svamp", "asdiv", "multiarith", "gsm8k_train")}
    assert len(GOLDEN) >= 80 and min(by_source.values()) >= 20, by_source
    traps = " ".join(c["trap"] for c in GOLDEN)
    for trap in ("perspective", "the-rest", "how-many-more", "start-unknown", "distractor"):
        assert trap in traps


@pytest.mark.parametrize("question, numbers, relation", [
    ("Dave had some apps on his phone. After deleting 18 of them he had 5 left. How many apps did he have on his "
     "phone at the start?", [18, 5], r"apps_at_first - deleting_apps = apps_left"),
    ("Danny collects bottle caps. He found 58 bottle caps at the park. Now he has 70 bottle caps in his collection. "
     "How many bottle caps did danny have at first?", [58, 70],
     r"danny_bottle_caps_at_first \+ found_bottle_caps = bottle_caps_now"),
    ("Each bookshelf contains 2 books. If he has a total of 38 books How many bookshelves does he have?", [2, 38],
     r"books_per_bookshel\w* \* bookshelves = total_books"),
])
def test_the_unknown_stands_where_the_text_puts_it(question, numbers, relation):
    text = relations.relational_eot(question, [Fraction(n) for n in numbers])
    assert text is not None and re.search(relation, text) and inverts(text), text
    assert text.splitlines()[0].startswith("% Assume") and text.splitlines()[-1].startswith("ans = ")


def test_a_wrong_reading_is_caught_by_the_solver():
    """'Sam gave him 5' adds to his count: read from the giver's side, the relation solves to another number."""
    question = "Tom had some marbles. Then Sam gave him 5 marbles. Now Tom has 12 marbles. How many marbles did Tom " \
               "have at first?"
    text = relations.relational_eot(question, [Fraction(5), Fraction(12)])
    assert text is not None and numbers_equal(solve_eot(text).answer, 7), text


@pytest.mark.parametrize("question, form", [
    ("Jake has 3 fewer peaches than Steven. Jake has 17 peaches. How many peaches does Steven have?", "inverse"),
    ("Steven has 17 peaches. Jake has 3 fewer peaches than Steven. How many peaches does Jake have?", "forward"),
    ("A pet store had 13 cats. They sold 10 cats. How many cats do they have left?", "forward"),
    ("The sky is blue. What colour is it?", "unknown"),
])
def test_question_form_is_read_from_the_text(question, form):
    assert relations.question_form(question) == form
