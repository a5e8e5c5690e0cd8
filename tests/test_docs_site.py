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
