"""Baseline for `autograd-tutor list`: a Typer command that prints a five-row rich table."""

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False)


@app.command()
def show() -> None:
    """Print a five-row table."""
    table = Table(title="Exercises", title_justify="left")
    for name in ("#", "Title", "Level", "Status", "Score"):
        table.add_column(name)
    for number in range(1, 6):
        table.add_row(str(number), f"Exercise number {number}", "Guided", "not started", "-")
    Console().print(table)


if __name__ == "__main__":
    app()
