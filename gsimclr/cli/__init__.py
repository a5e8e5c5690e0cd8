"""The `gsimclr` command line: `app` with every command registered (stages, then whole-study commands)."""

from gsimclr.cli import stages, studies
from gsimclr.cli.app import app

__all__ = ["app", "stages", "studies"]
