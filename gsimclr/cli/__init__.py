"""The `gsimclr` command line: `app` with every command registered (stages, then whole-study commands)."""

from gsimclr.cli import embed, label_quality, stages, studies
from gsimclr.cli.app import app

__all__ = ["app", "embed", "label_quality", "stages", "studies"]
