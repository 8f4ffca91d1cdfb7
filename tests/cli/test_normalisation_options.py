"""``--normalisation``, ``--controls`` and ``--normalise-within``: the options train, baseline and compare share."""

from __future__ import annotations

import argparse

import pytest

from napari_hcs import vocabulary
from napari_hcs.cli._normalisation_options import add_normalisation_arguments, normalisation_from_arguments
from napari_hcs.learn import Normalisation


def _parse(*argv):
    parser = argparse.ArgumentParser()
    add_normalisation_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_per_plate_without_controls():
    assert normalisation_from_arguments(_parse()) == Normalisation("plate", None, ())
    assert normalisation_from_arguments(_parse("--controls", "moa = DMSO,control")) == Normalisation(
        "plate", "moa=DMSO,control")
    assert normalisation_from_arguments(_parse("--normalisation", "global")) == Normalisation("global")


def test_groups_within_plates_are_read_as_columns():
    choice = normalisation_from_arguments(_parse("--normalise-within", " timepoint, batch "))
    assert choice.within == ("timepoint", "batch")
    assert choice.as_record() == {"normalisation": "plate", "controls": None,
                                  "normalise_within": ["timepoint", "batch"]}


def test_the_options_form_one_group_with_the_vocabulary_as_choices():
    parser = argparse.ArgumentParser()
    add_normalisation_arguments(parser)
    group = next(g for g in parser._action_groups if g.title == "normalisation")
    options = {a.option_strings[0]: a for a in group._group_actions}
    assert set(options) == {"--normalisation", "--controls", "--normalise-within"}
    assert tuple(options["--normalisation"].choices) == vocabulary.NORMALISATIONS
    assert "compound=DMSO" in options["--controls"].help


def test_bad_options_are_refused_by_name(capsys):
    with pytest.raises(ValueError, match=r"--controls needs --normalisation plate"):
        normalisation_from_arguments(_parse("--normalisation", "global", "--controls", "compound=DMSO"))
    with pytest.raises(ValueError, match=r"--normalise-within needs --normalisation plate"):
        normalisation_from_arguments(_parse("--normalisation", "global", "--normalise-within", "timepoint"))
    with pytest.raises(ValueError, match=r"Controls 'compound': expected COLUMN=VALUE\[,VALUE\], e\.g\. compound=DMSO"):
        normalisation_from_arguments(_parse("--controls", "compound"))
    with pytest.raises(SystemExit):
        _parse("--normalisation", "well")
    assert "invalid choice: 'well'" in capsys.readouterr().err
