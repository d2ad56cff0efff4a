"""Does the text shown before a prompt give that prediction's answer away?

`pack check` collects everything a learner has seen when a prompt appears (the exercise's
title and intro, every step's title, setup and code so far, the labels of earlier prompts,
earlier reveals) as `Shown` pieces, and asks `find` about each prediction. Every answer is
looked for in every spelling:

- a number: as the tool prints it, rounded (13.86, 13.9), with a trailing .0, as a fraction
  (1/3 for 0.333…), with a typographic minus, and (for whole numbers up to twenty) as a
  word ("seven"). One digit counts as much as ten.
- None, a named choice, True: as the word.
- an outcome: the words that say it ("raises", "refuses", "warns", "the fix", …), in the
  prose around the question (earlier reveals speak of earlier steps' outcomes).
- which error: the choice's name, compared without case, punctuation or `()`.

Two strengths. A *loose* match is the spelling anywhere; a *tied* match states it of the
quantity ("b.grad[0] = 4", "it is 7", "gives 4", "x.grad: 6"). A number that is a literal
of the code run so far is a given of the problem: it may appear loose ("a 4×3 matrix") but
not tied, unless the tie only restates an assignment of the code (`x = 3` where the code
says `x = torch.tensor(3.0)`). Words (None, True, "seven", a one-word choice) occur in prose
for many reasons, so only a tied match counts for them. An answer an earlier step revealed
for another prediction may appear in what was shown before this step.
"""

from __future__ import annotations

import io
import math
import re
import tokenize
from dataclasses import dataclass
from fractions import Fraction

from autograd_tutor.engine.answers import format_value
from autograd_tutor.engine.model import NO_ERROR, Value

NUMBER_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve "
                "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty").split()
# Words that say what code did, per outcome.
OUTCOME_SPELLINGS = {
    "error": ("error", "errors", "raise", "raises", "raised", "refuse", "refuses", "refused",
              "fail", "fails", "failed", "exception", "crash", "crashes"),
    "warning": ("warning", "warnings", "warn", "warns", "warned"),
    "runs": ("fix", "fixed", "the fix", "works", "succeeds", "runs fine", "runs without"),
}
# What ties a value to the quantity: `x.grad = 4`, `it is 4`, `x.grad → 4`.
RELATION = (r"(?:==|=|:|→|->|≈|\bis\b|\bare\b|\bequals?\b|\bgives?\b|\bholds?\b|\bbecomes?\b"
            r"|\bcomes to\b|\bwill be\b|\bstays?\b|\bremains?\b)")
QUALIFIER = r"(?:(?:about|exactly|still|just|only|then|now|again|simply)\s+)*"
STANDALONE = r"\b(?:gives|equals|comes to|evaluates to|works out to)\s+"
PRONOUNS = ("it", "this", "that", "the answer", "the result")
VULGAR = {Fraction(1, 2): "½", Fraction(1, 3): "⅓", Fraction(2, 3): "⅔",
          Fraction(1, 4): "¼", Fraction(3, 4): "¾"}


@dataclass(frozen=True)
class Shown:
    """One piece of text the learner has seen: where it was and in which step (0: the
    exercise's header). `reveal` is text shown only after an earlier step's code ran."""

    place: str
    text: str
    step: int
    reveal: bool = False


@dataclass(frozen=True)
class Leak:
    spelling: str
    place: str
    tied: bool
    excerpt: str

    def message(self) -> str:
        if self.tied:
            return (f"the text shown before this prediction states its answer in "
                    f"{self.place}: {self.excerpt!r}")
        return (f"the text shown before this prediction contains its answer ({self.spelling})"
                f" in {self.place}")


@dataclass(frozen=True)
class Givens:
    """What the code run so far states: its number literals and `name = literal` bindings."""

    literals: frozenset[float]
    bound: frozenset[tuple[str, float]]


def read_code(code: str) -> tuple[str, set[float], set[tuple[str, float]]]:
    """Split code into what reads as prose (comments and strings, which can state answers),
    its number literals, and the names it binds straight to a literal."""
    prose: list[str] = []
    literals: set[float] = set()
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return code, literals, set()
    for token in tokens:
        if token.type == tokenize.COMMENT:
            prose.append(token.string.lstrip("#"))
        elif token.type == tokenize.STRING:
            prose.append(token.string)
        elif token.type == tokenize.NUMBER:
            try:
                number = float(token.string.rstrip("jJ").replace("_", ""))
            except ValueError:
                continue
            literals |= {number, -number}  # a minus sign is an operator of its own
    bound = {(name, float(number)) for name, number in re.findall(
        r"(?m)^\s*([A-Za-z_]\w*)\s*=\s*(?:torch\.tensor\(\s*)?\(?\s*(-?\d+(?:\.\d*)?)\b", code)}
    return "\n".join(prose), literals, bound


def number_spellings(value: float) -> tuple[list[str], list[str]]:
    """(digits: the number written with digits or as a fraction; words: as a word)."""
    found = {format_value(value), f"{value:.3g}", f"{value:.4g}", f"{value:.5g}"}
    if float(value).is_integer():
        found |= {f"{value:.1f}", f"{value:.2f}"}
    else:
        found |= {format_value(value, 2), format_value(value, 3)}
        fraction = Fraction(value).limit_denominator(100)
        if fraction.denominator > 1 and math.isclose(float(fraction), value, rel_tol=1e-6):
            found.add(f"{fraction.numerator}/{fraction.denominator}")
            if abs(fraction) in VULGAR:
                found.add(("-" if fraction < 0 else "") + VULGAR[abs(fraction)])
    # A rounding that keeps one significant digit of a longer number (0.0213 -> 0.02) is
    # another number, not this one.
    digits = {text for text in found
              if len(re.sub(r"\D", "", text).lstrip("0")) >= 2 or text == format_value(value)
              or "/" in text or not re.search(r"\d", text)
              or float(value).is_integer()}
    digits |= {"−" + text[1:] for text in digits if text.startswith("-")}
    words = []
    if float(value).is_integer() and abs(value) <= 20:
        word = NUMBER_WORDS[int(abs(value))]
        words.append(f"minus {word}" if value < 0 else word)
    if value == 0.5:
        words.append("half")
    return sorted(digits), words


def _normal(text: str) -> str:
    """Text without markdown emphasis, code marks or escapes, for matching."""
    return re.sub(r"[*`\\]", "", text)


def _phrase(text: str) -> str:
    """Words only, lower case: 'backward() twice' and 'Backward twice' read alike."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower().replace("()", "")))


def _bounded(spelling: str) -> str:
    return rf"(?<![\w.]){re.escape(spelling)}(?![\w]|\.\d)"


def _excerpt(text: str, match: re.Match[str]) -> str:
    return " ".join(text[max(0, match.start() - 30): match.end() + 10].split())


def subjects(label: str, prediction_id: str) -> list[str]:
    """The names a statement of this prediction's answer would use."""
    names = {label.split()[0] if label.split() else label, prediction_id.split("@")[0],
             *PRONOUNS}
    return sorted((n for n in names if n), key=len, reverse=True)


def tied(text: str, spelling: str, names: list[str], bound: frozenset[tuple[str, float]],
         value: Value, words: bool) -> re.Match[str] | None:
    """A statement of `spelling` about the quantity (or a bare "gives 4")."""
    subject = "|".join(rf"(?<![\w.]){re.escape(name)}(?![\w(\[])" for name in names)
    flags = re.IGNORECASE if words else 0
    said = (rf"(?P<name>{subject})\s*(?:\([^)]*\)\s*)?{RELATION}\s*{QUALIFIER}"
            rf"{_bounded(spelling)}")
    for match in re.finditer(said, text, flags):
        # Restating the code's own `x = 3` is a given, not the answer.
        if isinstance(value, float) and (match.group("name"), value) in bound:
            continue
        return match
    return re.search(STANDALONE + QUALIFIER + _bounded(spelling), text, flags)


def find(value: Value, kind: str, label: str, prediction_id: str, shown: list[Shown],
         step: int, revealed: list[Value], givens: Givens) -> Leak | None:
    """The first place where `shown` gives away `value`, the answer of one prediction."""
    if kind == "outcome":
        return _loose_words(OUTCOME_SPELLINGS.get(str(value), ()), shown, reveals=False)
    if kind == "which":
        return None if value == NO_ERROR else _loose_phrase(str(value), shown)
    names = subjects(label, prediction_id)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        # An earlier step showed this number as another answer: only this step counts.
        if any(isinstance(v, float) and math.isclose(v, value, rel_tol=1e-9, abs_tol=1e-12)
               for v in revealed):
            shown = [piece for piece in shown if piece.step == step]
        digits, words = number_spellings(value)
        given = any(math.isclose(value, literal, rel_tol=1e-9, abs_tol=1e-12)
                    for literal in givens.literals)
        for piece in shown:
            text = _normal(piece.text)
            for spelling in digits:
                if not given:
                    match = re.search(_bounded(spelling), text)
                    if match:
                        return Leak(spelling, piece.place, False, _excerpt(text, match))
            for spelling in digits + words:
                match = tied(text, spelling, names, givens.bound, value, spelling in words)
                if match:
                    return Leak(spelling, piece.place, True, _excerpt(text, match))
        return None
    word = format_value(value)
    if isinstance(value, str) and len(_phrase(value).split()) > 1:
        found = _loose_phrase(value, shown)
        if found:
            return found
    for piece in shown:
        text = _normal(piece.text)
        match = tied(text, word, names, givens.bound, value, True)
        if match:
            return Leak(word, piece.place, True, _excerpt(text, match))
    return None


def _loose_words(words: tuple[str, ...], shown: list[Shown], reveals: bool) -> Leak | None:
    for piece in shown:
        if piece.reveal and not reveals:
            continue
        text = _normal(piece.text)
        for word in words:
            match = re.search(_bounded(word), text, re.IGNORECASE)
            if match:
                return Leak(word, piece.place, False, _excerpt(text, match))
    return None


def _loose_phrase(name: str, shown: list[Shown]) -> Leak | None:
    wanted = _phrase(name)
    if not wanted:
        return None
    for piece in shown:
        if re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", _phrase(piece.text)):
            return Leak(name, piece.place, False, name)
    return None
