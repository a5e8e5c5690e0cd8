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
