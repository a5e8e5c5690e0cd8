"""The study's cells pair two arms by seed, whatever order the rows arrive in."""

from gsimclr.outputs.metrics import ResultRow
from gsimclr.reporting.rows import cell_values, cells_by_seed
from gsimclr.reporting.tables import per_seed_table


def rows(method: str, by_seed: dict[int, float]) -> list[ResultRow]:
    return [ResultRow("II", "accuracy", method, "P3", seed, acc) for seed, acc in by_seed.items()]


def test_cells_are_keyed_and_listed_by_seed_not_by_row_order():
    study = rows("simclr", {0: 0.50, 1: 0.60, 2: 0.70}) + rows("gsimclr", {2: 0.72, 0: 0.52, 1: 0.62})
    assert cells_by_seed(study)[("gsimclr", "P3")] == {2: 72.0, 0: 52.0, 1: 62.0}
    values = cell_values(study)
    # paired by position downstream: each seed's G-SimCLR value sits under that seed's SimCLR value
    assert values[("simclr", "P3")] == [50.0, 60.0, 70.0]
    assert values[("gsimclr", "P3")] == [52.0, 62.0, 72.0]
    assert cell_values(study, scale=1.0)[("gsimclr", "P3")] == [0.52, 0.62, 0.72]


def test_the_per_seed_table_puts_each_value_under_its_own_seed():
    study = rows("gsimclr", {2: 0.72, 0: 0.52})
    table = per_seed_table(study, seeds=[0, 2])
    assert table[0] == "| method | representation | seed 0 | seed 2 |"
    assert table[2] == "| G-SimCLR | P3 | 52.00 | 72.00 |"


def test_each_representation_is_set_against_raw_pixels_paired_by_seed():
    from gsimclr.reporting.rows import pooled_metrics
    from gsimclr.reporting.tables import control_table
    from gsimclr.settings.names import PIXELS

    study = []
    for method, level in (("simclr", 0.60), ("gsimclr", 0.62), ("random_init", 0.40)):
        for rep in ("P1", "P2", "P3", "fine-tune"):
            study += [ResultRow("II", "accuracy", method, rep, s, level + s / 100) for s in (0, 1, 2)]
    study += [ResultRow("II", "accuracy", "pixels", PIXELS, s, 0.50 + s / 100) for s in (2, 0, 1)]

    table = control_table(study, ["P3"], control="pixels")
    assert table[0].startswith("| representation | Raw pixels | SimCLR − control (paired) |")
    # every seed is 10 points above its own seed's pixels: a zero-width paired margin, not 10 ± a spread
    assert table[2] == ("| P3 | 51.00 ± 2.48 | +10.00 ± 0.00 | SimCLR beats it | +12.00 ± 0.00 | G-SimCLR beats it |")
    pooled = pooled_metrics(study)
    assert abs(pooled["gsimclr_minus_pixels/P1/test_acc/mean"] - 0.12) < 1e-12
    assert pooled["gsimclr_minus_pixels/P1/test_acc/ci95"] < 1e-12
    assert "simclr_minus_pixels/finetune/test_acc/mean" not in pooled  # fine-tuning has no pixel control
