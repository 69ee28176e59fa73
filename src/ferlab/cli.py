"""Command-line interface placeholder; filled in below."""
import typer

app = typer.Typer()


def main() -> None:
    app()
