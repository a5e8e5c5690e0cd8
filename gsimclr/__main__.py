"""`python -m gsimclr` is the `gsimclr` command."""

from gsimclr.cli import app

app()
