"""The one prompt loop: ask until the learner types a prediction, a hint request, skip or q.

Used by exercises, practice, review and the graph playground alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from autograd_tutor.engine.answers import AnswerError
from autograd_tutor.engine.model import Value
from autograd_tutor.engine.runner import Guess
from autograd_tutor.views.ui import UI

QUIT_WORDS = {"q", "quit", "exit"}
HINT_WORDS = {"?", "hint"}
SKIP_WORDS = {"skip", "s"}


class Quit(Exception):
    """The learner typed q at a prompt."""


def ask(ui: UI, guess: Guess, prompt: str, parse: Callable[[str], Value],
        hints: Sequence[str]) -> Guess:
    """Fill `guess` from what the learner types at `prompt`. Raises Quit or EOFError."""
    while True:
        typed = ui.ask(prompt).strip()
        word = typed.lower()
        if word in QUIT_WORDS:
            raise Quit
        if word in HINT_WORDS:
            give_hint(ui, guess, hints)
            continue
        if word in SKIP_WORDS:
            guess.skipped = True
            return guess
        try:
            guess.value = parse(typed)
        except AnswerError as problem:
            ui.text(f"Not counted: {problem}.", "yellow", soft_wrap=True)
            continue
        guess.typed = typed
        return guess


def give_hint(ui: UI, guess: Guess, hints: Sequence[str]) -> None:
    if guess.hints_used < len(hints):
        guess.hints_used += 1
        ui.text(f"Hint {guess.hints_used}/{len(hints)}: {hints[guess.hints_used - 1]}",
                "magenta", soft_wrap=True)
    else:
        ui.text("No more hints. Type your best guess, or skip to see the answer.", "magenta")
