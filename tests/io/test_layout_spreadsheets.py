"""Layout tables as spreadsheets save them: encodings, separators, duplicates, empty files."""

from __future__ import annotations

import pytest

from napari_hcs.cli import main
from napari_hcs.io import read_layout_table
from napari_hcs.plate import PlateError
from napari_hcs.samples import sample_path

ROWS = [["Well", "compound", "dose"], ["B02", "Dimethyl sulfoxide", "0"], ["B03", "Staurosporin µ", "1.5"]]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1"])
@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_encodings_and_separators(tmp_path, encoding, sep):
    path = tmp_path / "layout.csv"
    path.write_bytes(("\r\n".join(sep.join(r) for r in ROWS) + "\r\n").encode(encoding))
    frame = read_layout_table(path)
    assert list(frame.columns) == ["compound", "dose"]
    assert frame.loc["B03", "compound"] == "Staurosporin µ"
    assert frame.loc["B03", "dose"] == 1.5


def test_identical_duplicates_collapse(tmp_path):
    path = tmp_path / "layout.csv"
    path.write_text("well,compound\nB02,DMSO\nB2,DMSO\nB03,taxol\n")
    frame = read_layout_table(path)
    assert frame.index.tolist() == ["B02", "B03"]


def test_conflicting_duplicates_are_named(tmp_path):
    path = tmp_path / "layout.csv"
    path.write_text("well,compound,dose\nB02,DMSO,0\nB02,taxol,0\nB03,taxol,1\n")
    with pytest.raises(PlateError, match=r"well B02 more than once with different values in compound;"):
        read_layout_table(path)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf"])
def test_an_empty_table_is_named(tmp_path, content):
    path = tmp_path / "layout.csv"
    path.write_bytes(content)
    with pytest.raises(PlateError, match=f"Layout table {path} is empty"):
        read_layout_table(path)


def test_a_missing_well_column_lists_few_names(tmp_path):
    path = tmp_path / "layout.csv"
    path.write_text(",".join(["wel"] + [f"col_{i}" for i in range(500)]) + "\n" + ",".join(["x"] * 501) + "\n")
    with pytest.raises(PlateError) as info:
        read_layout_table(path)
    message = str(info.value)
    assert "501 in all" in message and "closest to 'well': wel" in message and "col_499" not in message


@pytest.mark.parametrize("content", [b"", "well,compound\nP24,DMSO\n".encode("utf-16"), b"well\nnot-a-well\n"])
def test_the_cli_prints_one_line_naming_the_table(tmp_path, capsys, content):
    path = tmp_path / "layout.csv"
    path.write_bytes(content)
    code = main(["info", str(sample_path("scportrait_mini")), "--layout", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err
