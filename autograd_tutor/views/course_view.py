"""The course as `list` and the home screen show it, and the review queue's notices.

`tool` is how the learner runs this tool (the CLI knows it), for the commands suggested.
"""

from __future__ import annotations

from typing import Any

from autograd_tutor.app.course import Overview
from autograd_tutor.content import packs
from autograd_tutor.views.ui import UI


def tables(ui: UI, view: Overview, tool: str) -> None:
    """One table per pack shown, a line for the others, and a line for the review queue."""
    for pack in view.shown:
        title = "Exercises" if pack.name == packs.DEFAULT_PACK else f"Pack {pack.name}: " \
                f"{pack.title}"
        ui.say(ui.exercise_table(pack.exercises, view.status, title=title,
                                 prefix="" if pack.name == packs.DEFAULT_PACK
                                 else f"{pack.name}/"))
    if view.others:
        names = ", ".join(f"{p.name} ({len(p.exercises)})" for p in view.others)
        ui.text(f"More packs: {names}. See them with: {tool} list PACK", "dim")
    queue = view.queue
    if queue is None:
        return
    if queue.due:
        due = queue.due
        ui.text(f"{len(due)} review{'s' if len(due) > 1 else ''} due ({', '.join(due)}): "
                f"{tool} review", "yellow")
    elif queue.upcoming:
        first = queue.upcoming[0]
        ui.text(f"Next review: {first.concept}, {first.due.astimezone():%Y-%m-%d %H:%M}.",
                "dim")


def takeaways(ui: UI, found: packs.Installed) -> None:
    default = found.packs.get(packs.DEFAULT_PACK)
    if default and default.exercises:
        ui.markdown(default.exercises[-1].closing)


def all_done(ui: UI, found: packs.Installed, tool: str) -> None:
    takeaways(ui, found)
    ui.text(f"All exercises are done. Keep them fresh with: {tool} review   "
            f"(or new problems: {tool} practice)", "bold")


def nothing_due(ui: UI, queue: Any) -> None:
    """`review` with nothing due: when the next review is, and what it can't give."""
    if queue.upcoming:
        first = queue.upcoming[0]
        ui.text(f"Nothing is due. Next review: {first.concept}, "
                f"{first.due.astimezone():%Y-%m-%d %H:%M}.")
    else:
        ui.text("Nothing to review: the queue fills with concepts you miss.")
    if queue.unpractised:
        ui.text(f"Missed, with no practice problems yet: {', '.join(queue.unpractised)}. "
                "Run their exercises again to review them.", "dim")
