"""``napari-hcs profile`` on real BBBC021 crops (two plates, DMSO and cycloheximide), and its errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "profiles"))
from bbbc021_subset import copy_of, subset_project  # noqa: E402

from napari_hcs.cli import main  # noqa: E402
from napari_hcs.profiles.embedding_store import EmbeddingStore  # noqa: E402
from napari_hcs.profiles.profile_store import read_well_profiles, well_profiles_path  # noqa: E402
from napari_hcs.project import Project  # noqa: E402


@pytest.fixture
def project(tmp_path_factory, shared_data, tmp_path):
    return copy_of(subset_project(tmp_path_factory, shared_data), tmp_path / "project")


def _profile(project, *arguments) -> int:
    return main(["profile", "--project", str(project), *map(str, arguments)])


@pytest.mark.slow
def test_profile_writes_the_profiles_and_prints_a_summary(project, capsys):
    assert _profile(project, "--controls", "compound=DMSO", "--evaluate", "--batch-column", "plate",
                    "--null-size", "100") == 0
    out = capsys.readouterr()
    summary = json.loads(out.out[out.out.index("{"):])
    table = Project(project).cell_table()
    wells = table.groupby(["plate", "well"]).ngroups
    assert summary["wells"] == wells and summary["plates"] == 2 and summary["cells"] == len(table)
    assert summary["controls"] == "compound=DMSO" and summary["normalisation"] == "standardize"
    assert summary["scope"] == "global" and summary["spherize"] is True
    assert 0 < summary["features"] < summary["features_in"]
    assert "profile" in out.err and f"Saved {well_profiles_path(project)}" in out.err
    profiles = read_well_profiles(project)
    assert len(profiles.table) == wells and len(profiles.features) == summary["features"]
    assert set(profiles.table["compound"]) == {"DMSO", "cyclohexamide"} and "n_cells" in profiles.table
    evaluation = summary["evaluation"]
    # One compound besides DMSO: no NSC; its concentrations' replicate wells are retrieved.
    assert evaluation["nsc"] is None and "at least 2 compounds" in evaluation["skipped"]["nsc"]
    assert 0 < evaluation["map_replicates"] <= 1 and "nsc not scored" in out.out


@pytest.mark.slow
def test_profile_json_options_and_an_embedding_source(project, capsys):
    cells = Project(project).cell_store().cells()
    values = np.random.default_rng(0).normal(size=(len(cells), 6))
    EmbeddingStore(project).write("pca", cells["crop_index"].to_numpy(), values, provenance={"source": "pca"})
    assert _profile(project, "--source", "pca", "--aggregate", "mean", "--profile-normalisation", "robustize",
                    "--normalisation", "plate", "--feature-select",
                    "variance_threshold", "--no-spherize", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["source"] == "pca" and summary["aggregation"] == "mean" and summary["scope"] == "plate"
    assert summary["feature_selection"] == ["variance_threshold"] and summary["spherize"] is False
    assert read_well_profiles(project).features == [f"emb_{i:03d}" for i in range(6)]


@pytest.mark.slow
def test_profile_bad_input_is_a_clear_error_and_keeps_earlier_profiles(project, capsys):
    assert _profile(project, "--feature-select", "--no-spherize", "--json") == 0
    capsys.readouterr()
    before = well_profiles_path(project).read_bytes()
    assert _profile(project, "--controls", "compound=dmso") == 1
    error = capsys.readouterr().err
    assert "napari-hcs profile: error: Control value 'dmso' matches no well in column 'compound'" in error
    assert "DMSO, cyclohexamide" in error and "Traceback" not in error
    assert _profile(project, "--controls", "drug=DMSO") == 1
    assert "Control column 'drug' is not a column of the wells" in capsys.readouterr().err
    assert _profile(project, "--controls", "DMSO") == 1
    assert "expected COLUMN=VALUE" in capsys.readouterr().err
    assert _profile(project, "--source", "cnn") == 1
    assert "no 'cnn' embedding" in capsys.readouterr().err
    assert well_profiles_path(project).read_bytes() == before
    assert _profile(project, "--evaluate", "--moa-column", "mechanism") == 1
    error = capsys.readouterr().err
    assert "profiles are saved, but cannot be evaluated" in error and "'mechanism'" in error
    assert _profile(project.parent / "nowhere") == 1
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _profile(project, "--feature-select", "pca")
    assert "invalid choice: 'pca'" in capsys.readouterr().err


def test_profile_options_not_given_keep_the_core_defaults():
    from napari_hcs.cli import build_parser
    from napari_hcs.cli.profile_commands import HELP_DEFAULTS, _options
    from napari_hcs.profiles.well_profiles import ProfileOptions

    default = ProfileOptions()
    assert HELP_DEFAULTS == {key: getattr(default, key) for key in HELP_DEFAULTS}
    parser = build_parser()
    assert _options(parser.parse_args(["profile", "--project", "p"])) == default
    chosen = _options(parser.parse_args(["profile", "--project", "p", "--feature-select", "--no-spherize",
                                         "--controls", " compound = DMSO", "--normalisation", "plate"]))
    assert chosen.feature_selection == () and chosen.spherize is False
    assert chosen.controls == "compound=DMSO" and chosen.scope == "plate"
