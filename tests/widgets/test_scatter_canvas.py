"""The scatter canvas: colours drawn from the code table, lasso and box selection, clicks, modifiers."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.path import Path

pytestmark = pytest.mark.gui

TABLE = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0], [0.0, 0.4, 1.0, 1.0]], np.float32)


@pytest.fixture
def canvas(qtbot):
    from napari_hcs.widgets.scatter_canvas import ScatterCanvas

    widget = ScatterCanvas()
    qtbot.addWidget(widget)
    widget.resize(420, 380)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def _drag(canvas, points, modifiers=()):
    """Press, move through ``points`` and release, as vispy reports a mouse drag."""
    events = canvas.canvas.events
    press = events.mouse_press(pos=points[0], button=1, modifiers=modifiers)
    for point in points[1:]:
        events.mouse_move(pos=point, button=1, modifiers=modifiers, press_event=press)
    events.mouse_release(pos=points[-1], button=1, modifiers=modifiers, press_event=press)


def test_each_point_is_drawn_in_its_code_colour_and_recoloured_from_the_table(canvas):
    xy = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]], np.float32)
    canvas.set_points(xy, np.array([0, 1, 2]), TABLE, labels=("x", "y"))
    for table in (TABLE, TABLE[::-1].copy()):
        canvas.set_colours(np.array([0, 1, 2]), table)
        image = canvas.render()
        for (x, y), colour in zip(np.round(canvas.to_canvas(xy)).astype(int), table):
            assert np.allclose(image[y, x, :3], colour[:3] * 255, atol=40), (x, y, image[y, x])


def test_a_lasso_selects_the_points_inside_it_and_shift_adds_ctrl_removes(canvas):
    from vispy.util import keys

    rng = np.random.default_rng(0)
    xy = rng.normal(size=(200_000, 2)).astype(np.float32)
    canvas.set_points(xy, rng.integers(0, 3, len(xy)), TABLE)
    got = []
    canvas.selected.connect(lambda rows, mode: got.append((rows, mode)))
    canvas.set_mode("lasso")
    theta = np.linspace(0, 2 * np.pi, 40)
    outline = np.c_[200 + 60 * np.cos(theta), 170 + 40 * np.sin(theta)]
    _drag(canvas, [tuple(p) for p in outline])
    rows, mode = got[-1]
    inside = np.flatnonzero(Path(outline).contains_points(canvas.to_canvas(xy)))
    assert mode == "replace" and 5_000 < len(rows) and abs(len(rows) - len(inside)) <= len(inside) // 500
    assert canvas.outline.visible  # the outline stays until the next one
    _drag(canvas, [(10, 10), (60, 10), (60, 60), (10, 60)], modifiers=(keys.SHIFT,))
    assert got[-1][1] == "add"
    canvas.set_mode("box")
    _drag(canvas, [(150, 150), (180, 170), (250, 200)], modifiers=(keys.CONTROL,))
    rows, mode = got[-1]
    data = canvas.to_data([(150, 150), (250, 200)])
    low, high = data.min(axis=0), data.max(axis=0)
    expected = np.flatnonzero(((xy >= low) & (xy <= high)).all(axis=1))
    assert mode == "remove" and np.array_equal(rows, expected)


def test_selected_points_are_highlighted_and_a_click_names_the_nearest_point(canvas):
    xy = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]], np.float32)
    canvas.set_points(xy, np.zeros(3), TABLE)
    before = canvas.render()
    canvas.set_selected(np.array([1]))
    after = canvas.render()
    (x0, y0), (x1, y1) = np.round(canvas.to_canvas(xy[:2])).astype(int)
    assert after[y0, x0, :3].sum() < before[y0, x0, :3].sum()  # the others are dimmed
    assert after[y1, x1, 0] > 200  # the selected one keeps its colour
    clicked = []
    canvas.clicked.connect(clicked.append)
    _drag(canvas, [(x1 + 2, y1 - 1)])
    _drag(canvas, [(5, 5)])
    assert clicked == [1]
    canvas.set_current(2)
    assert canvas.current.count == 1
    with pytest.raises(ValueError, match="Unknown mouse mode"):
        canvas.set_mode("zoom")
