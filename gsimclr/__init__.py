"""gsimclr: SimCLR vs G-SimCLR (pseudo-label-guided batches) as a reproducible, tracked pipeline."""

__version__ = "0.1.0"
