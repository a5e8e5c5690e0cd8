"""Pipeline stages; each reads its inputs from disk and writes its outputs to disk and MLflow."""
