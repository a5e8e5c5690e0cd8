"""dvc.yaml's generated lists are what their sources say (tools/dvc_yaml.py): each stage's `params:` what
gsimclr/settings/declared.py declares, its code `deps:` the packages its module imports. Without them DVC would
keep stale results after a change; with too many, it re-runs stages for nothing."""

from conftest import REPO

from tools.dvc_yaml import code_deps, main, synced


def test_dvc_yaml_is_what_its_sources_generate():
    assert main(["--check"]) == 0, "dvc.yaml is out of date: run python -m tools.dvc_yaml"


def test_a_missing_dependency_or_an_extra_param_is_found_and_rewritten():
    text = (REPO / "dvc.yaml").read_text()
    mutated = text.replace("        - gsimclr/models\n", "", 1)
    mutated = mutated.replace("        - autoencoder\n", "        - model\n", 1)
    assert mutated != text
    rewritten, changed = synced(mutated, [0, 1, 2])
    assert changed == ["autoencoder"] and rewritten == text


def test_the_knn_plot_follows_params_seeds():
    text = (REPO / "dvc.yaml").read_text()
    rewritten, changed = synced(text, [0, 1, 2, 3])
    assert changed == ["plots"]
    plots = rewritten.split("\nplots:")[1]
    assert "plots/seed3/pretrain_gsimclr_knn.csv: knn_val_acc" in plots and plots.count("_knn.csv:") == 8


def test_code_deps_follow_imports_but_not_bookkeeping():
    deps = code_deps("pretrain")
    assert {"gsimclr/method", "gsimclr/models", "gsimclr/training", "gsimclr/stages/pretrain.py"} <= set(deps)
    assert "gsimclr/stages/context.py" in deps
    assert not {"gsimclr/system", "gsimclr/pipeline"} & set(deps)
    assert "gsimclr/evaluation" not in code_deps("autoencoder")


def test_dvc_ignores_bytecode_inside_package_deps():
    assert "__pycache__/" in (REPO / ".dvcignore").read_text().splitlines()
