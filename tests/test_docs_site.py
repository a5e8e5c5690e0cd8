"""The docs check of `make test` can fail: a planted broken link in a copy of the site makes `make docs-check` exit
non-zero (mkdocs's own --quiet once turned that failure into exit 0)."""

import shutil
import subprocess

import pytest
from conftest import REPO


@pytest.mark.skipif(
    not (REPO / ".venv" / "bin" / "mkdocs").exists(), reason="needs the project's venv (`make install`)"
)
def test_a_broken_link_fails_the_docs_check(tmp_path):
    for folder in ("docs", "results", "benchmarks/results", "gsimclr/settings"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "guidance.md"
    page.write_text(page.read_text() + "\nSee [the missing page](no-such-page.md).\n")
    check = [
        "make",
        "-s",
        "-C",
        str(REPO),
        "docs-check",
        f"MKDOCS_CONFIG={tmp_path / 'mkdocs.yml'}",
        f"SITE_DIR={tmp_path / 'site'}",
    ]
    result = subprocess.run(check, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout and "docs: the site has warnings" in result.stdout


FINISHED_STUDIES = ("results/cifar10-cpu", "results/imagenet5-cpu-strong", "results")
"""The studies with every control, 3 seeds: CIFAR-10 (JPEG q75 copy), the ImageNet subset, digits."""


@pytest.mark.parametrize("study", FINISHED_STUDIES)
def test_the_results_page_shows_each_finished_study_s_figures_as_the_project_draws_them(study, tmp_path):
    """The page embeds the forest plot and the per-seed figure of every finished study, and the committed PNGs are
    what `gsimclr figures` draws from the committed table today (a stale figure fails; the pixels are compared,
    not the bytes: one changed digit fails, another machine's rounding of an edge does not)."""
    import numpy as np
    from PIL import Image

    from gsimclr.outputs.metrics import read_results
    from gsimclr.reporting.figures import draw_table_figures

    page = (REPO / "docs" / "results.md").read_text()
    rows = [row for row in read_results(REPO / study / "results.csv") if row.metric == "accuracy"]
    for drawn in draw_table_figures(rows, tmp_path):
        assert f"]({study}/{drawn.name})" in page
        now, committed = (
            np.asarray(Image.open(path).convert("L"), dtype=float) for path in (drawn, REPO / study / drawn.name)
        )
        assert now.shape == committed.shape and (np.abs(now - committed) > 64).mean() < 1e-4, (
            f"{study}/{drawn.name} is stale"
        )
