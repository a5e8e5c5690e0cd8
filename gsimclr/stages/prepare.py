"""Stage 0: decode the dataset once into memory-mapped arrays under `prepared/` (see `gsimclr.data.prepared`).

DVC cannot see inside `data.root`, so this stage runs on every `dvc repro` (`always_changed`); its
output's hash changes only when the decoded images do, and only then does anything downstream re-run.
"""

from __future__ import annotations

from gsimclr.data.loaders import decode_dataset
from gsimclr.data.prepared import dataset_key, stamped_fingerprint, write_prepared
from gsimclr.stages.context import StageContext


def prepare(ctx: StageContext) -> dict:
    """Decode `data` at `data.image_size` and write it to `prepared/<dataset>-<size>px/`; returns the
    metadata (class names, shapes, content digest)."""
    cfg = ctx.params.data
    key = dataset_key(cfg)
    # fingerprinted before decoding: a file changed meanwhile makes the next stage refuse the arrays
    source = stamped_fingerprint(cfg, ctx.layout.source_stamp(key))
    return write_prepared(decode_dataset(cfg), ctx.layout.prepared_data(key), source)
