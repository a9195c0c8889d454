"""How relational the annotation teacher's EoT is, and how the question-form tagger splits the benchmarks.

Prints, per set (every problem of SVAMP, ASDiv, MultiArith and GSM8K train, then the training questions of a params
tier): the EoT rationales the teacher wrote, how many verify, and of the verified ones how many the solver must invert
(`equations.inverts`), how many state the text's relation with the result as the unknown, and how many are the
forward fallback; then each benchmark's problems by question form (`relations.question_form`).

    EOTD_DATA_DIR=/path/to/shared/data .venv/bin/python tests/benchmarks/bench_relations.py [--params params/default.yaml]
"""
from __future__ import annotations

import argparse
import collections

from eotd import params, synthesis, verify_many
from eotd.data import load
from eotd.equations import inverts
from eotd.paths import local_data_dir
from eotd.relations import question_form
from eotd.teachers.annotation import AnnotationTeacher
from eotd.teachers.base import Request

SETS = ("svamp", "asdiv", "multiarith", "gsm8k_train")


def forms(problems) -> collections.Counter:
    """Counts of written / verified / rejected EoT and, of the verified, inverts / text_forward / forward_fallback."""
    teacher = AnnotationTeacher()
    written = []
    for problem in problems:
        request = Request(problem.id, problem.question, "eot", 0, problem.solution)
        completion = teacher.complete_one(request)
        if completion.text is not None:
            written.append((problem, completion.text, teacher.describe(request)))
    counts = collections.Counter(written=len(written))
    verdicts = verify_many([("eot", text, problem.answer) for problem, text, _ in written])
    for (problem, text, said), verdict in zip(written, verdicts):
        if not verdict.correct:
            counts["rejected"] += 1
            continue
        counts["verified"] += 1
        counts["inverts" if inverts(text) else
               "forward_fallback" if said.get("schema") == "forward" else "text_forward"] += 1
    return counts


def line(name: str, counts: collections.Counter) -> str:
    verified = counts["verified"] or 1
    return (f"{name:>24}: {counts['written']:5} written, {counts['verified']:5} verified ({counts['rejected']} "
            f"rejected); of the verified: inverts {counts['inverts']} ({100 * counts['inverts'] / verified:.1f} %), "
            f"text_forward {counts['text_forward']}, forward_fallback {counts['forward_fallback']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params/default.yaml", help="the tier whose training questions to count")
    args = parser.parse_args()
    data = local_data_dir()
    loaded = {name: [p for p in load(name, data) if p.solution] for name in SETS}
    print("Every problem with a gold solution:")
    for name, problems in loaded.items():
        print(line(name, forms(problems)))
    tier = params.load(args.params)
    training = synthesis.training_problems(tier)
    print(f"The training questions of {args.params}:")
    by_source = collections.defaultdict(list)
    for problem in training:
        by_source[problem.dataset].append(problem)
    for name, problems in by_source.items():
        print(line(name, forms(problems)))
    print(line("all", forms(training)))
    print("Problems by question form (from the text alone):")
    for name in SETS[:3]:
        tags = collections.Counter(question_form(p.question) for p in load(name, data))
        print(f"{name:>24}: " + ", ".join(f"{form} {tags[form]}" for form in ("inverse", "forward", "unknown")))


if __name__ == "__main__":
    main()
