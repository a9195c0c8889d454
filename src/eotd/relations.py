"""What a word problem's question asks, read from its text alone, and the relational EoT a careful reader writes.

``read(question)`` finds the cue that says where the unknown sits (a start, a change, a part, a referent, a difference,
a group count, a rate: the ``inverse`` form; a result or a total: ``forward``) and returns a ``Reading`` with its
schema and the words it came from, or None when no rule applies. It looks at the text only: no gold answer, no model
output, so it also tags evaluated problems (``question_form``).

``relational_eot(question, numbers)`` writes the relation in XoT's layout: ``%`` lines quoting the text, the unknown
declared first (``% Assume ... is x:`` / ``name = x``), one known a line, the relation as the text states it with the
unknown where the text puts it, ``ans = name`` last. The caller (the annotation teacher) passes the numbers a gold
solution uses; they choose *which* numbers of the text take part, never the form of the relation: every number's role
(start, change and its direction, final, total, part, factor) comes from the words around it. A wrong reading
therefore solves to a wrong number and the verifier rejects it. None when the rule cannot place every number.

Schemas (``SCHEMAS``): change-start (``x - 5 = 12``: had some, gave 5 away, has 12 now), change-change
(``4 - x = 3``), combine-part (``7 + x = 20``: the rest), compare-difference (``8 + x = 12``: how many more),
compare-referent (``x + 8 = 20``: Steven has 8 more than Jill, asked Jill), groups-count (``5 * x = 30``: each box
holds 5), groups-rate (``6 * x = 30``: shared equally among 6), times (``3 * x = 27``: 3 times as many as, asked the
smaller). Forward readings (the text's own relation, result unknown): change-result, combine-total, compare-result,
groups-total, times-result; they are written as the forward EoT.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

INVERSE = ("change-start", "change-change", "combine-part", "compare-difference", "compare-referent", "groups-count",
           "groups-rate", "times")
FORWARD = ("change-result", "combine-total", "compare-result", "groups-total", "times-result")
SCHEMAS = (*INVERSE, *FORWARD, "forward")  # "forward": no rule applied, the forward EoT of the gold steps
FORMS = ("inverse", "forward", "unknown")

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
          "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
          "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100,
          "twice": 2, "double": 2, "triple": 3, "thrice": 3, "dozen": 12}
_NUMBER = re.compile(r"(?<![\w.])\$?\s?(\d+/\d+|\d{1,3}(?:,\d{3})+(?!\d)|\d+(?:\.\d+)?|\.\d+)(?![\w])|\b(" +
                     "|".join(_WORDS) + r")\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.;!?](?=\s|$)")
_QUESTION = re.compile(r"\b(how|what|find)\b", re.IGNORECASE)

_DECREASE = re.compile(r"\b(gave|give|gives|giving|los[te]|loses|losing|ate|eat|eats|eating|sold|sell|spen[dt]|use[ds]?|"
                       r"using|paid|pay|pays|donat\w*|thr[eo]w\w*|drop\w*|remov\w*|delet\w*|broke|break\w*|pop\w*|"
                       r"dr[ai]nk\w*|got off|took away|took out|hand(?:ed|s)? out|lent|lend\w*|shared?|fell|falls?|died|"
                       r"dies|flew away|ran away|return\w*|cut|burn\w*|melt\w*|wilt\w*|sent|send\w*|mail\w*|trad\w*|"
                       r"discard\w*|fired|cost|costs|less|fewer|left|leaves)\b", re.IGNORECASE)
_INCREASE = re.compile(r"\b(got on|got|get|gets|getting|receiv\w*|bought|buy\w*|found|find\w*|pick\w*|collect\w*|"
                       r"earn\w*|won|win\w*|add\w*|came|come|comes|join\w*|gain\w*|made|make|makes|making|gr[eo]w\w*|"
                       r"caught|catch\w*|gather\w*|sav\w*|borrow\w*|bak\w*|took|take|takes|arriv\w*|brought|bring\w*|"
                       r"put|puts|plac\w*|hir\w*|increas\w*|climb\w*|read|walk\w*|dr[io]ve\w*|built|build\w*|wr[io]te\w*|"
                       r"plant\w*|more)\b", re.IGNORECASE)
_MONEY = re.compile(r"\$|\bdollars?\b|\bcents?\b|\bmoney\b|\bcost\b", re.IGNORECASE)
_MONEY_SIGN = {"bought": -1, "buy": -1, "buys": -1, "paid": -1, "pay": -1, "spent": -1, "spend": -1, "cost": -1,
               "costs": -1, "got": 1, "get": 1, "gets": 1, "took": 1, "take": 1, "takes": 1, "made": 1, "make": 1,
               "makes": 1, "sold": 1, "sell": 1, "sells": 1}
_STATE = re.compile(r"\b(had|has|have|there (?:are|were|is|was)|is|are|was|were|contains?|holds?|owns?|needs?)\b")
_FINAL = re.compile(r"\b(now|left|remain(?:s|ed|ing)?|still|in the end|at the end|end(?:s|ed)? (?:up )?with|"
                    r"after that|afterwards)\b", re.IGNORECASE)
_FINAL_BEFORE = re.compile(r"\b(now|still|in the end|at the end|end(?:s|ed)? up with|finally)\b[^,]*$", re.IGNORECASE)
_FINAL_AFTER = re.compile(r"^\W*(?:(?:[\w-]+\W+){0,3}?(?:remaining|remain|now)\b|left\b|.*\b(?:in|at) the end\b)",
                          re.IGNORECASE)
_STATE_BEFORE = re.compile(r"\b(?:has|had|have|are|were|is|was|with)\s+(?:\$\s?)?$", re.IGNORECASE)
_START = re.compile(r"\b(at first|initially|in the beginning|to begin with|originally|at the start|at the beginning|"
                    r"to start with|before)\b", re.IGNORECASE)
_TOTAL = re.compile(r"\b(total|in all|altogether|all together|combined|together|sum|in total|overall)\b",
                    re.IGNORECASE)
_GROUP = re.compile(r"\b(each|per|every|an?)\b", re.IGNORECASE)
_SHARE = re.compile(r"\b(equally|among|between|split|divided|divide|shared?|distribute[ds]?|evenly)\b",
                    re.IGNORECASE)
_PRONOUNS = {"he", "she", "they", "it", "i", "we", "you", "his", "her", "their"}
_OBJECTS = {"him", "her", "them", "me", "us"}
_STOP = set("""a an the and or of in on at to for from by with into onto each every per is are was were be been
has have had did does do some many much more fewer less than that this these those there their his her its he she they
it if then so as all total how what which who whom will would can could should must need needs now left still also
them him us me
just only other another rest remaining altogether together combined""".split())


@dataclass(frozen=True)
class Reading:
    """Where a question puts its unknown: the schema, the words of the text that say so, and the form."""

    schema: str
    cue: str

    @property
    def form(self) -> str:
        return "inverse" if self.schema in INVERSE else "forward"


@dataclass(frozen=True)
class Quantity:
    value: Fraction
    start: int  # character offsets in the text
    end: int
    clause: str  # the sentence it stands in
    before: str  # the sentence's text before it
    after: str  # and after it


def split_question(text: str) -> tuple[str, str]:
    """(body, question): the question starts at the last 'how' / 'what' / 'find' of the text."""
    text = " ".join(text.split())
    starts = [m.start() for m in _QUESTION.finditer(text)]
    if not starts:
        return text, ""
    at = starts[-1]
    while at > 0 and text[at - 1] not in ".?!" and not re.search(r"[.?!,]\s*$", text[:at]):
        previous = [s for s in starts if s < at]  # "how many more ... than" keeps the question's first 'how'
        if not previous or re.search(r"[.?!]", text[previous[-1]:at]):
            break
        at = previous[-1]
    return text[:at].strip(), text[at:].strip()


def quantities(text: str) -> list[Quantity]:
    """Every number written in the text (digits or a number word), with its clause."""
    text = " ".join(text.split())
    bounds = [0, *(m.end() for m in _SENTENCE_END.finditer(text)), len(text)]
    out = []
    for m in _NUMBER.finditer(text):
        raw = m.group(1) or m.group(2)
        if m.group(2) and m.group(2).lower() in ("one", "a"):
            continue  # 'one of them' is not a quantity
        value = Fraction(raw.replace(",", "")) if m.group(1) else Fraction(_WORDS[raw.lower()])
        lo = max(b for b in bounds if b <= m.start())
        hi = min(b for b in bounds if b >= m.end())
        out.append(Quantity(value, m.start(), m.end(), text[lo:hi].strip(" ,.;"), text[lo:m.start()],
                            text[m.end():hi]))
    return out


def verb_sign(text: str) -> tuple[str, int]:
    """(verb, +1 / -1): the last verb of `text` that adds to (got, bought, found) or takes from (gave, ate, lost) a
    count; ("", 0) when none does."""
    found = [(m.start(), m.group(0).lower(), -1) for m in _DECREASE.finditer(text)]
    found += [(m.start(), m.group(0).lower(), 1) for m in _INCREASE.finditer(text)]
    if not found:
        return "", 0
    _, verb, sign = max(found)
    return verb, sign


def read(question: str) -> Reading | None:
    """The schema of a word problem, from its text alone; None when no rule applies."""
    body, asked = split_question(question)
    q = asked.lower()
    if not q:
        return None
    if m := re.search(r"how (?:many|much) (?:\w+ )?(more|fewer|less|longer|taller|older|bigger|heavier|farther|further|"
                      r"higher|larger|greater|shorter|younger|smaller|cheaper|faster|slower|lighter)\b.*\bthan\b", q):
        return Reading("compare-difference", m.group(0))
    if m := re.search(r"how (?:many|much) more\b.*\b(need|needs|have to|has to|must|should|to reach|to make|"
                      r"to finish|to get)\b", q):
        return Reading("combine-part", m.group(0))
    if m := _START.search(q):
        return Reading("change-start", m.group(0))
    if re.search(r"\bhad some\b|\bsome\b.*\b(then|after)\b", body.lower()) and re.search(r"\b(did|does|do)\b.*\bhave\b",
                                                                                          q):
        return Reading("change-start", "had some")
    if reading := _compare(body, q):
        return reading
    if m := re.search(r"\b(rest|remaining|others?|else)\b", q):
        if _TOTAL.search(body) or re.search(r"\bthe rest\b", body.lower()):
            return Reading("combine-part", m.group(0))
    if (m := re.search(r"how many (\w+)", q)) and (noun := m.group(1)) not in _STOP:
        stem = re.sub(r"(ves|ies|es|s)$", "", noun)
        if re.search(rf"\b(each|per|every|an?|in one)\s+(\w+\s+)?{re.escape(stem)}", body.lower()):
            if not _TOTAL.search(q):
                return Reading("groups-count", f"how many {noun} / each {stem}")
    if re.search(r"\b(each|per|every|apiece)\b", q) and not _TOTAL.search(q):
        cue = _SHARE.search(body) or _TOTAL.search(body)
        if cue:
            return Reading("groups-rate", f"{cue.group(0)} / {re.search(r'each|per|every|apiece', q).group(0)}")
    if (m := re.search(r"\b(?:a total of|in all|altogether|in total|the rest|others)\b", body, re.IGNORECASE)) \
            and not _TOTAL.search(q) and not re.search(r"\b(each|per|every)\b", q):
        return Reading("combine-part", m.group(0))
    if m := re.search(r"how (?:many|much)\b.*?\b(did|does|do|will|would)\b((?:\s+[\w-]+){1,4})", q):
        verb, sign = verb_sign(m.group(2))
        final = _FINAL.search(body)
        noun = _asked_noun(asked)
        where = _sentence_of(body, final.start()) if final else ""
        same = final and (_MONEY.search(where) if noun == "money" else
                          noun == "answer" or re.search(rf"\b{re.escape(noun[:4])}", where, re.IGNORECASE))
        if sign and same and not _FINAL.search(q):
            return Reading("change-change", f"{verb} / {_FINAL.search(body).group(0)}")
    if re.search(r"\bsome\s+(?:\w+\s+)?left\b", body, re.IGNORECASE) and re.search(r"\bleft\W*$", q):
        return Reading("change-change", "some left")
    if m := _FINAL.search(q):
        return Reading("change-result", m.group(0))
    if m := _TOTAL.search(q):
        group = _GROUP.search(body)
        return Reading("groups-total" if group and not _TOTAL.search(body) else "combine-total", m.group(0))
    return None


_COMPARE = re.compile(r"(?P<n>\d[\d,.]*|" + "|".join(_WORDS) + r")\s+(?:\w+\s+){0,3}?(?P<dir>more|fewer|less|older|"
                      r"younger|taller|shorter|longer|bigger|smaller|heavier|lighter|greater)\s+(?:\w+\s+){0,3}?than\s+"
                      r"(?P<ref>\w+)", re.IGNORECASE)
_TIMES = re.compile(r"(?P<k>\d[\d,.]*|" + "|".join(_WORDS) + r")\s+(?:times\s+)?(?:as\s+(?:many|much)|times)\s+(?:\w+\s+)"
                    r"{0,3}?(?:as|than)\s+(?P<ref>\w+)", re.IGNORECASE)


def _compare(body: str, q: str) -> Reading | None:
    """'A has N more than B' / 'A has k times as many as B': asked B (the referent) is inverse, asked A forward."""
    for pattern, inverse, forward in ((_COMPARE, "compare-referent", "compare-result"), (_TIMES, "times", "times-result")):
        m = pattern.search(body)
        if not m:
            continue
        ref = m.group("ref").lower()
        subject = _subject(body[:m.start()])
        if _TOTAL.search(q):
            return Reading(forward, m.group(0))  # 'how many do they have in total': the sum is the result
        if _TOTAL.search(body):
            return Reading(inverse, m.group(0))  # 'twice as many as ...; in total 180': a relation over the sum
        if ref not in _STOP and re.search(rf"\b{re.escape(ref)}\b", q):
            return Reading(inverse, m.group(0))
        if subject and re.search(rf"\b{re.escape(subject.lower())}\b", q):
            return Reading(forward, m.group(0))
    return None


def _sentence_of(text: str, at: int) -> str:
    starts = [0, *(m.end() for m in _SENTENCE_END.finditer(text[:at]))]
    end = _SENTENCE_END.search(text, at)
    return text[starts[-1]:end.end() if end else len(text)]


def _subject(text: str) -> str:
    """The last capitalised name in `text` (the clause's subject, as far as rules can tell), else ''."""
    names = [w for w in re.findall(r"\b[A-Z][a-z]+\b", text) if w.lower() not in _STOP | _PRONOUNS
             and w not in ("If", "When", "After", "Then", "There", "On", "In", "At", "During", "For", "A", "An")]
    return names[-1] if names else ""


def _first_name(text: str) -> str:
    names = [w for w in re.findall(r"\b[A-Z][a-z]+\b", text) if _subject(w)]
    return names[0] if names else ""


def _asked_object(asked: str) -> str:
    """'How many apples did the tree have' -> 'tree'."""
    m = re.search(r"\b(?:did|does|do|is|was|were|are)\s+the\s+(\w+)", asked, re.IGNORECASE)
    return m.group(1).lower() if m else ""


def question_form(question: str) -> str:
    """'inverse', 'forward' or 'unknown' (no rule applies), from the question's text alone."""
    reading = read(question)
    return reading.form if reading else "unknown"


# ---------------------------------------------------------------- writing the relation

def _direction(q: Quantity, protagonist: str, previous: int = 0) -> int:
    """+1 / -1: whether the verb between the previous number of the sentence and this one (else just after it: '5
    more came') adds to or takes from the protagonist's count. No verb: the previous number's direction ('gave away 5
    apples and 3 pears'), or +1 for a part joined by 'and' ('48 new players and 6 returning players'); else 0."""
    before = re.split(r"\d|,", q.before)[-1]
    verb, sign = verb_sign(_own_after(q))  # '31 boys left'
    if not sign:
        verb, sign = verb_sign(before)
    if not sign or verb == "more" and "than" in q.after:
        return previous or (1 if re.search(r"\band\b", before) else 0)
    if _MONEY.search(q.clause) and verb in _MONEY_SIGN:
        sign = _MONEY_SIGN[verb]
    said_before = before[:before.lower().rfind(verb)]
    actor = protagonist if re.search(r"\b(he|she|they|i|we)\s*$", said_before, re.IGNORECASE) else \
        _subject(said_before)
    recipient = re.search(rf"\b{re.escape(verb)}\s+(\w+)", q.clause, re.IGNORECASE)
    if protagonist and actor != protagonist and recipient and (
            recipient.group(1).lower() in _OBJECTS or recipient.group(1) == protagonist):
        sign = -sign  # 'Sam gave him 5': the protagonist receives
    elif protagonist.islower() and re.search(rf"\bfrom\s+(?:\w+\s+){{0,3}}?{re.escape(protagonist)}", q.clause,
                                             re.IGNORECASE):
        sign = -sign  # 'picked 2 apples from her tree', the tree asked: the tree loses them
    return sign


def _own_after(q: Quantity) -> str:
    """The words just after a number, up to the next 'and', comma or number ('31 boys left', '3 more birds came')."""
    return " ".join(re.split(r"\band\b|,|\d|\bthen\b", q.after)[0].split()[:4])


def _signs(changes: list[Quantity], protagonist: str) -> list[int]:
    """_direction of each change, a number inheriting the direction of the one before it in its sentence."""
    out, last = [], {}
    for q in changes:
        sign = _direction(q, protagonist, last.get(q.clause, 0))
        last[q.clause] = sign
        out.append(sign)
    return out


def _is_final(q: Quantity) -> bool:
    """The number is the count at the end: 'now has 12', 'had 5 left', 'had 5 apples left' (not '31 boys left',
    where 'left' is the verb)."""
    if _FINAL_BEFORE.search(q.before) or _FINAL_AFTER.search(q.after):
        return True
    return bool(_STATE_BEFORE.search(q.before) and re.match(r"\W*(?:[\w-]+\s+){0,3}?left\b", q.after, re.IGNORECASE))


def _roles(body: str, numbers: list[Fraction], text: str) -> list[Quantity] | None:
    """The quantities of the text that carry `numbers` (a multiset), in text order; None if one is missing."""
    found, need = [], Counter(numbers)
    for q in quantities(text):
        if need[q.value] > 0:
            need[q.value] -= 1
            found.append(q)
    return None if +need else found


def _snake(words: list[str]) -> str:
    name = "_".join(w.lower() for w in words if w.lower() not in _STOP and re.fullmatch(r"[A-Za-z]+", w))
    return name[:40].strip("_")


def _noun(q: Quantity) -> str:
    """The noun after a number ('12 red apples' -> 'red_apples', two words at most)."""
    words = re.findall(r"[A-Za-z]+", q.after)[:3]
    kept = [w for w in words if w.lower() not in _STOP][:2]
    return _snake(kept)


def _asked_noun(asked: str) -> str:
    m = re.search(r"how (?:many|much)\s+(?:more\s+|fewer\s+|less\s+)?(\w+)(?:\s+(\w+))?", asked, re.IGNORECASE)
    verbs = _STOP | {"did", "does", "do", "is", "are", "was", "were", "will", "would", "can", "could", "should"}
    if m and m.group(1).lower() not in verbs:
        second = (m.group(2) or "").lower()
        two = second and second not in verbs and not second.endswith("ed") and not verb_sign(second)[1]
        return f"{m.group(1).lower()}_{second}" if two else m.group(1).lower()
    return "money" if _MONEY.search(asked) or "how much" in asked.lower() else "answer"


class _Names:
    def __init__(self):
        self.used: set[str] = set()

    def __call__(self, *candidates: str) -> str:
        for name in candidates:
            name = re.sub(r"_+", "_", name).strip("_")
            if name and name not in self.used and name not in ("ans", "x") and not name[0].isdigit():
                self.used.add(name)
                return name
        base = next((c for c in candidates if c), "quantity")
        k = 2
        while f"{base}_{k}" in self.used:
            k += 1
        self.used.add(f"{base}_{k}")
        return f"{base}_{k}"


def _num(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"({value.numerator} / {value.denominator})"


def _quote(text: str, limit: int = 110) -> str:
    text = " ".join(text.split()).strip(" ,.;")
    text = text[:1].upper() + text[1:]
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def relational_eot(question: str, numbers: list[Fraction], reading: Reading | None = None) -> str | None:
    """The question's own relation in XoT's layout over `numbers` (the gold's numbers of the text), or None when the
    reading is forward or its rule cannot give every number a role."""
    reading = reading or read(question)
    if reading is None or reading.schema not in INVERSE:
        return None
    text = " ".join(question.split())
    body, asked = split_question(text)
    found = _roles(body, numbers, body)
    if not found or len(found) != len(numbers):
        return None
    protagonist = _subject(asked) or _asked_object(asked) or _first_name(body)
    noun = _asked_noun(asked)
    names = _Names()
    subject = _snake([protagonist]) if protagonist else ""
    writer = _WRITERS[reading.schema]
    built = writer(found, protagonist, names, subject, noun, body, reading, asked)
    if built is None:
        return None
    unknown, unknown_words, knowns, relation = built
    lines = [f"% Assume {unknown_words} is x:", f"{unknown} = x"]
    for q, name in knowns:
        lines += [f"% {_quote(q.clause)}:", f"{name} = {_num(q.value)}"]
    lines += [f"% {_quote(asked, 140)}", relation, f"% The answer is {unknown}:", f"ans = {unknown}"]
    return "\n".join(lines)


def _change(found, protagonist, names, subject, noun, body, reading, asked):
    """change-start: x + signed changes = final; change-change: start + signed changes + sign * x = final."""
    finals = [q for q in found if _is_final(q)]
    if len(finals) != 1:
        return None
    final = finals[0]
    rest = [q for q in found if q is not final]
    if reading.schema == "change-change":
        states = [q for q, sign in zip(rest, _signs(rest, protagonist)) if not sign]
        if len(states) != 1:
            return None
        start = states[0]
        verb, sign = verb_sign(reading.cue.split(" / ")[0])
        if _MONEY.search(body) and verb in _MONEY_SIGN:
            sign = _MONEY_SIGN[verb]
        changes = [q for q in rest if q is not start]
    else:
        start, sign, changes = None, 1, rest
    signs = _signs(changes, protagonist)
    if 0 in signs or any(re.search(r"\beach\b", q.after[:20] + q.before[-15:]) for q in changes):
        return None  # 'gave 23 cards to each of his 15 students' is not a sum of changes
    if reading.schema == "change-start":
        unknown = names(f"{subject}_{noun}_at_first" if subject else f"{noun}_at_first", f"{noun}_at_first")
        words = f"the {noun.replace('_', ' ')} at first"
    else:
        unknown = names(f"{verb}_{noun}", f"{noun}_{verb}", "change")
        words = f"the {noun.replace('_', ' ')} {'taken away' if sign < 0 else 'added'}"
    knowns, left = [], [] if start is None else [start]
    named = {}
    if start is not None:
        named[id(start)] = names(f"{subject}_{noun}" if subject else noun, f"{noun}_before", "start")
        knowns.append((start, named[id(start)]))
    for q, s in zip(changes, signs):
        verb = verb_sign(q.before.rsplit(",", 1)[-1])[0] or verb_sign(" ".join(q.after.split()[:4]))[0]
        named[id(q)] = names(f"{verb.replace(' ', '_')}_{_noun(q) or noun}", f"{_noun(q) or noun}_{verb}", "change")
        knowns.append((q, named[id(q)]))
    named[id(final)] = names(f"{noun}_now" if "now" in final.clause.lower() else f"{noun}_left", f"final_{noun}")
    knowns.append((final, named[id(final)]))
    knowns.sort(key=lambda item: item[0].start)
    terms = [named[id(start)]] if start is not None else [unknown]
    for q, s in zip(changes, signs):
        terms.append(("+ " if s > 0 else "- ") + named[id(q)])
    if start is not None:
        terms.append(("+ " if sign > 0 else "- ") + unknown)
    relation = " ".join(terms) + f" = {named[id(final)]}"
    return unknown, words, knowns, relation


def _difference(found, protagonist, names, subject, noun, body, reading, asked):
    """compare-difference / 'how many more ... need': the larger = the smaller + x."""
    if len(found) != 2:
        return None
    small, big = sorted(found, key=lambda q: (q.value, q.start))
    if small.value == big.value:
        return None
    part = reading.schema == "combine-part"
    unknown = names(f"{noun}_still_needed" if part else f"{noun}_difference", "difference")
    words = f"the {noun.replace('_', ' ')} {'still needed' if part else 'difference'}"
    small_name = names(_snake([_subject(small.clause)]) + "_" + (_noun(small) or noun) if _subject(small.clause)
                       else (_noun(small) or noun), f"smaller_{noun}")
    big_name = names(_snake([_subject(big.clause)]) + "_" + (_noun(big) or noun) if _subject(big.clause)
                     else (_noun(big) or noun), f"larger_{noun}")
    knowns = sorted([(small, small_name), (big, big_name)], key=lambda item: item[0].start)
    return unknown, words, knowns, f"{small_name} + {unknown} = {big_name}"


def _part(found, protagonist, names, subject, noun, body, reading, asked):
    """combine-part: the known parts + x = the total (the number whose clause says total / in all)."""
    totals = [q for q in found if _TOTAL.search(q.clause)]
    if reading.cue.startswith("how many more") or len(totals) != 1:
        return _difference(found, protagonist, names, subject, noun, body, reading, asked) if len(totals) != 1 else None
    total = totals[0]
    parts = [q for q in found if q is not total]
    if any(re.search(r"\b(each|per|every|times|as many|as much)\b", q.clause, re.IGNORECASE) for q in parts):
        return None  # a part that is a product is not a plain part
    unknown = names(f"other_{noun}", f"rest_{noun}", "rest")
    named = {id(total): names(f"total_{noun}", f"{noun}_in_all")}
    for q in parts:
        named[id(q)] = names(_noun(q) or f"part_{noun}", f"part_{noun}")
    knowns = sorted(((q, named[id(q)]) for q in found), key=lambda item: item[0].start)
    relation = " + ".join([*(named[id(q)] for q in parts), unknown]) + f" = {named[id(total)]}"
    return unknown, f"the other {noun.replace('_', ' ')}", knowns, relation


def _referent(found, protagonist, names, subject, noun, body, reading, asked):
    """compare-referent: A has N more (fewer) than B, A known, B asked: x + N = A (x - N = A)."""
    if len(found) != 2:
        return None
    m = _COMPARE.search(reading.cue)
    diffs = [q for q in found if re.search(r"\b(more|fewer|less|older|younger|taller|shorter|longer|bigger|smaller|"
                                           r"heavier|lighter|greater)\b", q.after.lower())]
    if len(diffs) != 1 or not m:
        return None
    diff = diffs[0]
    other = next(q for q in found if q is not diff)
    if re.search(r"\btimes\b", reading.cue) or _TOTAL.search(body):
        return None  # '5 times more than', or a relation over a sum: not 'x + N = A'
    more = m.group("dir").lower() in ("more", "older", "taller", "longer", "bigger", "heavier", "greater")
    ref = m.group("ref")
    unknown = names(f"{ref.lower()}_{noun}", f"{noun}_of_{ref.lower()}", "referent")
    comparer = _subject(body[:body.find(m.group(0))]) if m.group(0) in body else ""
    diff_name = names(f"{'more' if more else 'fewer'}_{noun}", "difference")
    other_name = names(f"{_snake([_subject(other.clause) or comparer])}_{noun}".strip("_"), f"known_{noun}")
    knowns = sorted([(diff, diff_name), (other, other_name)], key=lambda item: item[0].start)
    relation = f"{unknown} {'+' if more else '-'} {diff_name} = {other_name}"
    return unknown, f"{ref}'s {noun.replace('_', ' ')}", knowns, relation


def _groups(found, protagonist, names, subject, noun, body, reading, asked):
    """groups-count / groups-rate / times: factor * x = total, the factor being the number tied to each / per /
    every / among / times, the total the other number, or the first of the others changed by the rest ('had 62,
    handed out 8, the rest in pies of 9': 9 * pies = 62 - 8)."""
    if len(found) < 2:
        return None
    if reading.schema == "times":
        tied = [q for q in found if re.match(r"\s*(times|as many|as much)", q.after.lower())]
    else:
        tied = [q for q in found if re.search(r"\b(each|every|per)\s+(?:[\w-]+\s+){0,3}$", q.before, re.IGNORECASE)
                or re.match(r"\W*(?:[\w-]+\s+){0,3}?(each|per|every|an?|apiece)\b\s*(?!total|lot)", q.after,
                            re.IGNORECASE)
                or reading.schema == "groups-rate" and _SHARE.search(q.before[-25:] + " " + q.after[:25])]
    if len(tied) != 1:
        return None
    factor = tied[0]
    total, *changes = [q for q in found if q is not factor]
    signs = _signs(changes, protagonist)
    if 0 in signs or not all(verb_sign(_own_after(q))[1] or verb_sign(re.split(r"\d|,", q.before)[-1])[1]
                             for q in changes):
        return None  # every change names its own verb ('handed out 8'), or the reading is not a plain total
    if reading.schema == "groups-count":
        container = reading.cue.split("how many ")[1].split(" /")[0]
        unknown = names(container, f"number_of_{container}")
        words = f"the number of {container}"
        factor_name = names(f"{_noun(factor) or noun}_per_{container.rstrip('s')}", "per_group")
    elif reading.schema == "groups-rate":
        unknown = names(f"{noun}_each", f"{noun}_per_share", "each")
        words = f"the {noun.replace('_', ' ')} each"
        factor_name = names(_noun(factor) or "groups", "groups")
    else:
        m = _TIMES.search(reading.cue)
        ref = m.group("ref").lower() if m else "other"
        unknown = names(f"{ref}_{noun}", f"{noun}_of_{ref}")
        words = f"{ref}'s {noun.replace('_', ' ')}"
        factor_name = names("times", "factor")
    total_name = names(f"total_{_noun(total) or noun}" if not changes else _noun(total) or f"start_{noun}",
                       f"total_{noun}")
    knowns = [(factor, factor_name), (total, total_name)]
    right = total_name
    for q, sign in zip(changes, signs):
        verb = verb_sign(q.before.rsplit(",", 1)[-1])[0] or verb_sign(" ".join(q.after.split()[:4]))[0]
        name = names(f"{verb.replace(' ', '_')}_{_noun(q) or noun}", "change")
        knowns.append((q, name))
        right += f" {'+' if sign > 0 else '-'} {name}"
    knowns.sort(key=lambda item: item[0].start)
    if reading.schema == "times" and _TOTAL.search(total.clause):
        if not re.search(rf"\b{re.escape(ref)}\b", asked, re.IGNORECASE):
            return None  # the larger one asked: 'x + x / k = total' is not what the sentence states
        return unknown, words, knowns, f"{unknown} + {factor_name} * {unknown} = {right}"
    return unknown, words, knowns, f"{factor_name} * {unknown} = {right}"


_WRITERS = {"change-start": _change, "change-change": _change, "combine-part": _part,
            "compare-difference": _difference, "compare-referent": _referent, "groups-count": _groups,
            "groups-rate": _groups, "times": _groups}
