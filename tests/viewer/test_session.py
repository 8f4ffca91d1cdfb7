"""The Qt-free viewer session: one plate, project, site and class list with events."""

from __future__ import annotations

import pytest

from napari_hcs.plate import PlateError, Site
from napari_hcs.project import Project
from napari_hcs.viewer.session import Session

from plates import make_plate


@pytest.fixture
def session(tmp_path):
    session = Session()
    session.set_plate(make_plate(wells=("A01", "A02", "B01"), n_sites=2), project_dir=tmp_path / "project")
    return session


def test_a_site_is_requested_then_shown(session):
    requested, shown = [], []
    session.site_requested.connect(requested.append)
    session.site_shown.connect(shown.append)
    site = session.request_well("A02", 1)
    assert requested == [site] and shown == [] and session.current_site == site
    assert session.shown_site is None  # nothing drew it yet
    session.mark_shown(site)
    assert shown == [site] and session.shown_site == site
    assert session.request_well("B01") == Site("B01", 1, 0)  # the same field in the next well


def test_a_new_plate_asks_for_its_first_site_unless_one_is_shown(tmp_path):
    session = Session()
    requested = []
    session.site_requested.connect(requested.append)
    plate = make_plate()
    session.set_plate(plate, project_dir=tmp_path / "p1")
    assert requested == [plate.site("B02", 0)]
    other = make_plate()
    session.set_plate(other, project_dir=tmp_path / "p2", shown_site=other.site("B03", 1))
    assert session.shown_site == other.site("B03", 1) and len(requested) == 1


def test_labels_and_classes_are_saved_at_once(session, tmp_path):
    changed = []
    session.annotations_changed.connect(changed.append)
    session.add_class("control")
    session.add_class("drug", "red")
    session.label_wells(["A01", "A02"], "control")
    session.label_wells(["B01"], "drug")
    session.rename_class("control", "dmso")
    project = Project(tmp_path / "project")
    assert project.read_classes() == [{"name": "dmso", "color": "#e69f00"}, {"name": "drug", "color": "#ff0000"}]
    reopened = make_plate(wells=("A01", "A02", "B01"), n_sites=2)
    project.apply_annotations(reopened)
    assert reopened.annotations["class"].to_dict() == {"A01": "dmso", "A02": "dmso", "B01": "drug"}
    assert session.remove_class("dmso") == ["A01", "A02"]
    assert changed and changed[-1] is session.plate


def test_bad_requests_say_what_is_wrong(session):
    with pytest.raises(ValueError, match="No class named 'x'"):
        session.label_wells(["A01"], "x")
    with pytest.raises(PlateError, match="Z09"):
        session.request_well("Z09")
    with pytest.raises(PlateError, match="Open a plate"):
        Session().request_well("A01")


def test_a_read_only_project_is_reported_not_raised(session, tmp_path, monkeypatch):
    messages = []
    session.message.connect(messages.append)

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(Project, "save_annotations", refuse)
    session.add_class("control")
    session.label_wells(["A01"], "control")
    assert session.plate.well_annotations("A01") == {"class": "control"}
    assert any("Could not save annotations" in m and "read-only" in m for m in messages)
