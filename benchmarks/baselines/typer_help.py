"""Baseline for `autograd-tutor --help`: the smallest one-command Typer app.

The benchmark runs `python typer_help.py --help`; the floor is Python, Typer and rich.
"""

import typer

app = typer.Typer(add_completion=False)


@app.command()
def hello(name: str = "world") -> None:
    """Say hello."""
    print(f"hello {name}")


if __name__ == "__main__":
    app()
