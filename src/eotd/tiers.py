"""The README's table of params tiers, generated from params/*.yaml: `python -m eotd.tiers` rewrites the text between
the `<!-- tiers:start -->` and `<!-- tiers:end -->` markers of README.md (`--check`: only say whether it is current).

It reads each file's YAML mapping over the defaults of `eotd.params.Params`, not the validated dataclass, so a key it
does not know (or one added to a file before `Params` has it) never breaks the table: keys it knows are shown, others
are ignored.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from pathlib import Path

import yaml

from eotd import paths, records
from eotd.protocol import GSM_SYMBOLIC

START, END = "<!-- tiers:start -->", "<!-- tiers:end -->"


def defaults() -> dict:
    """Every Params field with a default, as its default value ({} when Params cannot be imported)."""
    try:
        from eotd.params import Params
    except Exception:  # noqa: BLE001 - a params.py mid-edit must not stop the table
        return {}
    out = {}
    for f in dataclasses.fields(Params):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def load(path: Path, base: dict | None = None) -> dict:
    """A params file's settings: its YAML mapping over the defaults, plus `name` (the file's stem unless given) and
    `about` (the first sentence of the file's leading comment)."""
    path = Path(path)
    text = path.read_text()
    raw = yaml.safe_load(text) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a mapping of key: value")
    settings = {**(defaults() if base is None else base), **raw}
    settings.setdefault("name", path.stem)
    if not raw.get("name"):
        settings["name"] = path.stem
    comment = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    about = " ".join(comment)
    match = re.match(r"(.+?\.)(?=\s+[A-Z(]|$)", about)  # up to a full stop that ends a sentence (not "e.g.")
    settings["about"] = (match.group(1) if match else about).strip()
    return settings


def _code(value) -> str:
    return f"`{value}`"


def _count(n, name: str | None = None) -> str:
    """A number of problems, None as "all"; a GSM-Symbolic set is generated and has no "all": its default size."""
    if n is None and name in GSM_SYMBOLIC:
        from eotd.evalsets import GSM_SYMBOLIC_SIZE  # here: a module mid-edit spoils one cell, not the table
        return str(GSM_SYMBOLIC_SIZE)
    return "all" if n is None else str(n)


def _names(values) -> str:
    if isinstance(values, (list, tuple)):
        return ", ".join(_code(v) for v in values) or "none"
    return _code(values)


def _percent(x) -> str:
    try:
        return f"{float(x) * 100:g} %"
    except (TypeError, ValueError):
        return str(x)


def teacher(s: dict) -> str:
    out = _code(s.get("teacher", "?"))
    if s.get("teacher_model"):
        out += f" ({_code(s['teacher_model'])})"
    return out


def training_data(s: dict) -> str:
    dataset, n = s.get("train_dataset", "?"), s.get("train_questions")
    out = f"all of {_code(dataset)}" if n is None else f"{n} questions of {_code(dataset)}"
    if dataset == "gsm_symbolic" and s.get("gsm_symbolic_split"):
        held = s.get("gsm_symbolic_test_fraction")
        unit = "templates" if s["gsm_symbolic_split"] == "template" else "instances"
        out += f" ({_percent(held)} of {unit} held out)" if held is not None else f" (split by {unit})"
    extra = s.get("train_extra")
    if isinstance(extra, dict) and extra:
        out += " + " + ", ".join(f"{_code(k)} {_count(v)}" for k, v in extra.items())
    elif isinstance(extra, (list, tuple)) and extra:
        out += " + " + _names(extra)
    samples = s.get("samples_per_question")
    if isinstance(samples, int) and samples > 1:
        out += f"; {samples} samples per question"
    return out


def student(s: dict) -> str:
    out = _code(s.get("student", "?"))
    epochs = s.get("epochs")
    if isinstance(epochs, (int, float)):
        out += f", {epochs:g} epoch" + ("" if epochs == 1 else "s")
    return out


def methods(s: dict) -> str:
    seeds, parts = s.get("train_seeds"), []  # method -> seeds (a list, or how many)
    seeds = seeds if isinstance(seeds, dict) else {}
    listed = s.get("methods") or []
    for method in listed if isinstance(listed, (list, tuple)) else [listed]:
        part = str(method)
        if method == "ETD":
            notes = [str(s["etd_data"]).replace("_", " ")] if s.get("etd_data") else []
            notes += ["read by its fallback only"] if s.get("etd_generation") == "fallback" else []
            part += f" ({'; '.join(notes)})" if notes else ""
        given = seeds.get(method)
        if isinstance(given, (list, tuple)) and len(given) > 1:
            part += f" ×{len(given)} (seeds {', '.join(map(str, given))})"
        elif isinstance(given, int) and not isinstance(given, bool) and given > 1:
            part += f" ×{given}"
        parts.append(part)
    out = ", ".join(parts) or "none"
    if s.get("evaluate_base"):
        shots, thoughts = s.get("base_shots"), s.get("base_thoughts")
        how = ", ".join(x for x in [f"{shots}-shot" if shots is not None else "",
                                    "/".join(map(str, thoughts)) if isinstance(thoughts, (list, tuple)) else ""] if x)
        out += f"; base ({how})" if how else "; base"
    return out


def _limits(sets, limit, per_set) -> str:
    per_set = per_set if isinstance(per_set, dict) else {}
    sets = sets if isinstance(sets, (list, tuple)) else [sets]
    return ", ".join(f"{_code(name)} {_count(per_set.get(name, limit), name)}" for name in sets) or "none"


def evaluation(s: dict) -> str:
    return _limits(s.get("eval_sets"), s.get("eval_limit"), s.get("eval_limits"))


def ablations(s: dict) -> str:
    parts = []
    if s.get("ablation_thought_mixes"):
        parts.append("thought mixes (7 subsets)")
    size_methods, sizes = s.get("ablation_size_methods"), s.get("ablation_sizes")
    if size_methods and sizes:
        shown = ", ".join(_percent(x) for x in sizes) if isinstance(sizes, (list, tuple)) else str(sizes)
        parts.append(f"data size {shown} ({', '.join(map(str, size_methods))})")
    if s.get("ablation_style_methods"):
        parts.append(f"rationale style ({', '.join(map(str, s['ablation_style_methods']))})")
    if not parts:
        return "none"
    return "; ".join(parts) + " on " + _limits(s.get("ablation_eval_sets"), s.get("ablation_eval_limit"), {})


COLUMNS = {"teacher": teacher, "training data": training_data, "student": student, "methods": methods,
           "evaluation (set, problems)": evaluation, "ablations": ablations}


def tier_files(params_dir: Path | None = None) -> list[Path]:
    """The tiers' params files, smallest training set first (then by name)."""
    files = sorted(Path(params_dir or paths.PARAMS).glob("*.yaml"))
    base = defaults()

    def size(path: Path):
        try:
            n = load(path, base).get("train_questions")
        except (ValueError, yaml.YAMLError):
            n = None
        return (n if isinstance(n, (int, float)) else math.inf, path.stem)

    return sorted(files, key=size)


def _cell(column, s: dict) -> str:
    try:
        text = column(s)
    except Exception as exc:  # noqa: BLE001 - a value of a shape this table does not expect shows as such
        text = f"? ({type(exc).__name__})"
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(params_dir: Path | None = None) -> str:
    """The generated section: a header line, one row per tier, and each file's own first sentence."""
    base, rows, about = defaults(), [], []
    for path in tier_files(params_dir):
        try:
            s = load(path, base)
        except (ValueError, yaml.YAMLError) as exc:
            rows.append(f"| `{path.stem}` | " + " | ".join([f"unreadable: {type(exc).__name__}"] * len(COLUMNS)) + " |")
            continue
        rows.append("| " + " | ".join([_code(s["name"]), *(_cell(c, s) for c in COLUMNS.values())]) + " |")
        if s["about"]:
            about.append(f"- `{s['name']}`: {s['about']}")
    head = ["Generated by `python -m eotd.tiers` from `params/*.yaml`; do not edit by hand. Evaluation: problems per "
            "set (a seeded sample, the same for every method; `all` = the whole set; a GSM-Symbolic set is generated, "
            "so an unlimited one shows the number drawn).", "",
            "| tier | " + " | ".join(COLUMNS) + " |", "|" + "---|" * (len(COLUMNS) + 1)]
    return "\n".join(head + rows + ([""] + about if about else [])) + "\n"


def block(params_dir: Path | None = None) -> str:
    return f"{START}\n{markdown(params_dir)}{END}"


def current(readme: Path) -> str | None:
    """The block README.md holds now (markers included), or None without both markers in order."""
    text = Path(readme).read_text()
    start, end = text.find(START), text.find(END)
    return text[start:end + len(END)] if -1 < start < end else None


def update_readme(readme: Path, params_dir: Path | None = None) -> bool:
    """Replace the text between the markers with the generated table; True when the file changed. A README without
    the markers gets them appended at its end."""
    return records.replace_marked_block(readme, START, END, block(params_dir))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md's table is not the generated one")
    args = parser.parse_args(argv)
    readme = paths.ROOT / "README.md"
    if args.check:
        if current(readme) != block():
            raise SystemExit(f"{readme}: the tiers table is out of date; run `python -m eotd.tiers`")
        print(f"{readme}: tiers table current")
        return
    changed = update_readme(readme)
    print(f"{readme}: tiers table {'updated' if changed else 'unchanged'} from {paths.relative(paths.PARAMS)}/*.yaml")


if __name__ == "__main__":
    main(sys.argv[1:])
