"""The `gsimclr` command line: `app` with every command registered (stages, then whole-study commands)."""

from gsimclr.cli import embed, stages, studies
from gsimclr.cli.app import app

__all__ = ["app", "embed", "stages", "studies"]
