"""results.md's provenance: which run made each number, and images the dataset lost to decoding."""

from gsimclr.reporting.report import provenance_section
from gsimclr.reporting.rows import SeedOutputs


def outputs(record: dict) -> list[SeedOutputs]:
    return [SeedOutputs(seed=0, evaluation={}, cluster=None, pretrain={}, records={"autoencoder": record})]  # type: ignore[arg-type]


def test_images_left_out_are_said_in_the_report_only_when_there_are_any():
    record = {"run_id": "abc", "wall_s": 1.0, "device": "cpu"}
    clean = "\n".join(provenance_section(outputs(record), "link"))
    assert "could not be decoded" not in clean and "| autoencoder | 0 | `abc` | 1.0 | cpu |" in clean
    lossy = "\n".join(provenance_section(outputs({**record, "unreadable_images": 3}), "link"))
    assert "3 image file(s) of the dataset could not be decoded and were left out" in lossy
