"""A scatter plot for hundreds of thousands of points: vispy, one draw call, lasso and box selection.

Every point is a vertex of one OpenGL point list: its position and a colour
*code*; the colours are a texture of a few entries (one per legend entry), so
recolouring by another column uploads one float per point and changing a
colour uploads a handful of texels. vispy's ``Markers`` is not used: it uploads
fourteen values per point and shades every fragment with a marker outline,
which takes three times as long for 200,000 points on a software renderer.
Selected points take codes shifted past the table, which the shader draws
larger, outlined and opaque while the others are dimmed (still one draw call);
the cell gone to is ringed.

Selecting: in *lasso* mode drag a free-hand outline, in *box* mode a rectangle;
Shift adds to the selection, Ctrl (or Alt) removes from it. The outline is
filled as a mask of the canvas pixels (:func:`skimage.draw.polygon`) and each
point is looked up at its screen pixel: one vectorised pass over the points,
exact to a pixel (:func:`rows_in_polygon` is the exact test in data coordinates). In *pan* mode the mouse pans and zooms, and a
click on a point emits ``clicked`` with its row.
"""

from __future__ import annotations

import numpy as np
from matplotlib.path import Path
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QVBoxLayout, QWidget
from vispy import gloo, scene
from vispy.util import keys
from vispy.visuals import Visual

__all__ = ["MODES", "ScatterCanvas", "point_size", "rows_in_polygon"]

#: Mouse modes: pan and zoom (click a point to go to it), free-hand lasso, rectangle.
MODES = ("pan", "lasso", "box")
BACKGROUND = "#262930"  # napari's dark theme
OUTLINE_COLOUR = (1.0, 0.93, 0.2, 1.0)
SELECTED_EDGE = (1.0, 1.0, 1.0, 1.0)
DIMMED_ALPHA = 0.3
#: A click farther than this from every point (screen pixels) selects nothing.
CLICK_RADIUS = 6.0

_VERTEX = """
attribute vec2 a_position;
attribute float a_code;
varying vec4 v_colour;
varying float v_inner;
void main() {
    gl_Position = $transform(vec4(a_position, 0.0, 1.0));
    // Codes from n_colours on are the selected points: full colour, larger, outlined.
    float selected = step($n_colours, a_code);
    float code = a_code - selected * $n_colours;
    v_colour = texture2D($colours, vec2((code + 0.5) / $n_colours, 0.5));
    v_colour.a *= mix($alpha, 1.0, selected);
    float size = $size + selected * $grow;
    float inner = max(0.5 - ($edge + selected * $selected_edge) / size, 0.0);
    v_inner = inner * inner;
    gl_PointSize = size;
}
"""
_FRAGMENT = """
varying vec4 v_colour;
varying float v_inner;
void main() {
    vec2 d = gl_PointCoord - vec2(0.5);
    float r2 = dot(d, d);
    if (r2 > 0.25) discard;
    gl_FragColor = r2 > v_inner ? $edge_colour : v_colour;
}
"""


class ColouredPointsVisual(Visual):
    """Round points of one size, each coloured by a code into a small colour table.

    A code ``c + K`` (``K`` colours in the table) draws colour ``c`` as selected:
    at full opacity, larger and outlined, while the others take the ``alpha`` set.
    """

    def __init__(self, size: float = 3.0, edge: float = 0.0, edge_colour=(0.0, 0.0, 0.0, 0.0)):
        super().__init__(vcode=_VERTEX, fcode=_FRAGMENT)
        self._draw_mode = "points"
        self.set_gl_state("translucent", depth_test=False)
        self._positions = gloo.VertexBuffer(np.full((1, 2), np.nan, np.float32))
        self._codes = gloo.VertexBuffer(np.zeros(1, np.float32))
        self._table = gloo.Texture2D(np.zeros((1, 1, 4), np.float32), interpolation="nearest")
        self.shared_program["a_position"] = self._positions
        self.shared_program["a_code"] = self._codes
        program = self.shared_program.vert
        program["colours"] = self._table
        program["n_colours"] = 1.0
        program["alpha"] = 1.0
        program["grow"] = 3.0
        program["selected_edge"] = 1.0
        self.shared_program.frag["edge_colour"] = tuple(float(v) for v in edge_colour)
        self.set_style(size=size, edge=edge)
        self.count = 0

    def set_points(self, xy: np.ndarray, codes: np.ndarray) -> None:
        """Positions ``(N, 2)`` and colour codes ``(N,)`` (indices into the table)."""
        self.count = len(xy)
        if self.count:
            self._positions.set_data(np.ascontiguousarray(xy, dtype=np.float32))
        else:  # one point nowhere: the program still compiles on the first draw
            self._positions.set_data(np.full((1, 2), np.nan, np.float32))
        self.set_codes(codes if self.count else np.zeros(1))

    def set_codes(self, codes: np.ndarray) -> None:
        """New colour codes for the points (as many as there are points)."""
        self._codes.set_data(np.ascontiguousarray(codes, dtype=np.float32))
        self.update()

    def set_table(self, table: np.ndarray) -> None:
        """The colour table: ``(K, 4)`` RGBA in 0-1."""
        table = np.asarray(table, dtype=np.float32).reshape(-1, 4)
        self._table.set_data(table[None] if len(table) else np.zeros((1, 1, 4), np.float32))
        self.shared_program.vert["n_colours"] = float(max(len(table), 1))
        self.update()

    def set_style(self, *, size: float | None = None, edge: float | None = None, alpha: float | None = None) -> None:
        for name, value in (("size", size), ("edge", edge), ("alpha", alpha)):
            if value is not None:
                self.shared_program.vert[name] = float(value)
        self.update()

    def _prepare_transforms(self, view) -> None:
        view.view_program.vert["transform"] = view.get_transform()


ColouredPoints = scene.visuals.create_visual_node(ColouredPointsVisual)


def point_size(n: int) -> float:
    """Point diameter in pixels for ``n`` points: smaller as they get many.

    Examples
    --------
    >>> point_size(500), point_size(200_000)
    (7.0, 3.0)
    """
    return 7.0 if n <= 2_000 else 5.0 if n <= 20_000 else 4.0 if n <= 80_000 else 3.0


def rows_in_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Rows of ``xy`` inside a closed polygon (both in the same coordinates).

    Examples
    --------
    >>> xy = np.array([[0.5, 0.5], [2.0, 2.0], [0.1, 0.9]])
    >>> rows_in_polygon(xy, np.array([[0, 0], [1, 0], [1, 1], [0, 1]])).tolist()
    [0, 2]
    """
    polygon = np.asarray(polygon, dtype=float).reshape(-1, 2)
    if len(polygon) < 3 or not len(xy):
        return np.zeros(0, np.int64)
    low, high = polygon.min(axis=0), polygon.max(axis=0)
    near = np.flatnonzero((xy[:, 0] >= low[0]) & (xy[:, 0] <= high[0]) & (xy[:, 1] >= low[1]) & (xy[:, 1] <= high[1]))
    inside = Path(polygon, closed=False).contains_points(xy[near]) if len(near) else np.zeros(0, bool)
    return near[inside].astype(np.int64)


class ScatterCanvas(QWidget):
    """The scatter: points, their colours, the selected points and the mouse modes.

    Signals
    -------
    selected(object, str)
        Rows inside a lasso or box just drawn, and ``"replace"``, ``"add"`` or ``"remove"``.
    clicked(int)
        The row of the point clicked in pan mode.
    """

    selected = Signal(object, str)
    clicked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.canvas = scene.SceneCanvas(keys=None, bgcolor=BACKGROUND, size=(400, 360))
        grid = self.canvas.central_widget.add_grid(margin=2)
        self.y_axis = scene.AxisWidget(orientation="left", axis_font_size=6, tick_label_margin=4,
                                       axis_label_margin=22, text_color="#d0d0d0", axis_color="#909090")
        self.y_axis.width_max = 42
        self.x_axis = scene.AxisWidget(orientation="bottom", axis_font_size=6, tick_label_margin=10,
                                       axis_label_margin=22, text_color="#d0d0d0", axis_color="#909090")
        self.x_axis.height_max = 36
        grid.add_widget(self.y_axis, row=0, col=0)
        grid.add_widget(self.x_axis, row=1, col=1)
        self.view = grid.add_view(row=0, col=1)
        self.view.camera = scene.PanZoomCamera(aspect=None)
        self.x_axis.link_view(self.view)
        self.y_axis.link_view(self.view)
        self.points = ColouredPoints(edge_colour=SELECTED_EDGE, parent=self.view.scene)
        self.current = ColouredPoints(size=16.0, edge=2.5, edge_colour=OUTLINE_COLOUR, parent=self.view.scene)
        self.current.set_table(np.zeros((1, 4)))
        self.outline = scene.visuals.Line(color=OUTLINE_COLOUR, width=1.5, parent=self.view.scene)
        for order, node in enumerate((self.points, self.current, self.outline)):
            node.order = order
        self.xy = np.zeros((0, 2), np.float32)
        self.codes = np.zeros(0, np.int32)
        self.selected_rows = np.zeros(0, np.int64)
        self._colours = 0
        self.mode = "pan"
        self._drag: list[tuple[float, float]] = []
        self._press = None
        self._moved = False
        self.canvas.events.mouse_press.connect(self._on_press)
        self.canvas.events.mouse_move.connect(self._on_move)
        self.canvas.events.mouse_release.connect(self._on_release)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas.native)

    # -- data -----------------------------------------------------------------------
    def set_points(self, xy: np.ndarray, codes: np.ndarray, table: np.ndarray, *, labels=("", "")) -> None:
        """Show new points (``(N, 2)``), their colour codes and the colour table; the view fits them."""
        self.xy = np.ascontiguousarray(xy, dtype=np.float32).reshape(-1, 2)
        self.codes = np.asarray(codes, dtype=np.int32)
        self.selected_rows = np.zeros(0, np.int64)
        self.points.set_style(size=point_size(len(self.xy)), alpha=1.0)
        self._colours = max(len(np.asarray(table).reshape(-1, 4)), 1)
        self.points.set_points(self.xy, self.codes)
        self.points.set_table(table)
        self.x_axis.axis.axis_label, self.y_axis.axis.axis_label = labels
        self.set_current(None)
        self.show_outline(None)
        self.reset_view()

    def set_colours(self, codes: np.ndarray, table: np.ndarray) -> None:
        """Recolour the points: new codes (uploaded only when they differ) and colour table."""
        codes = np.asarray(codes, dtype=np.int32)
        changed = codes is not self.codes and not np.array_equal(codes, self.codes)
        self.codes = codes
        self.points.set_table(table)
        if changed or max(len(table), 1) != self._colours:
            self._colours = max(len(table), 1)
            self._show_selected()

    def set_selected(self, rows: np.ndarray) -> None:
        """Highlight these rows (and dim the others); an empty array highlights none."""
        self.selected_rows = np.asarray(rows, dtype=np.int64)
        self._show_selected()

    def _show_selected(self) -> None:
        rows = self.selected_rows
        codes = self.codes
        if len(rows):
            codes = codes.copy()
            codes[rows] += self._colours
        self.points.set_codes(codes if len(codes) else np.zeros(1))
        self.points.set_style(alpha=DIMMED_ALPHA if len(rows) else 1.0)

    def set_current(self, row: int | None) -> None:
        """Ring one point (the cell gone to), or none."""
        rows = np.zeros(0, np.int64) if row is None else np.array([int(row)])
        self.current.set_points(self.xy[rows], np.zeros(len(rows), np.int32))

    def reset_view(self) -> None:
        """Fit the view to the points (the 0.5th to 99.5th percentiles, so outliers do not shrink it)."""
        if not len(self.xy):
            self.view.camera.set_range(x=(0, 1), y=(0, 1))
            return
        sample = self.xy[::max(len(self.xy) // 20_000, 1)]  # percentiles of 20,000 points are enough
        low, high = np.nanpercentile(sample, [0.5, 99.5], axis=0) if len(sample) > 1000 else \
            (np.nanmin(sample, axis=0), np.nanmax(sample, axis=0))
        span = np.where(high > low, high - low, 1.0)
        self.view.camera.set_range(x=(low[0] - 0.05 * span[0], high[0] + 0.05 * span[0]),
                                   y=(low[1] - 0.05 * span[1], high[1] + 0.05 * span[1]), margin=0)

    def render(self) -> np.ndarray:
        """Draw now and return the image (RGBA); what a screenshot or a timing needs."""
        return self.canvas.render()

    # -- selecting ----------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """``"pan"`` (the mouse pans and zooms), ``"lasso"`` or ``"box"`` (the mouse selects)."""
        if mode not in MODES:
            raise ValueError(f"Unknown mouse mode {mode!r}; expected one of {', '.join(MODES)}.")
        self.mode = mode
        self.view.camera.interactive = mode == "pan"

    def to_data(self, canvas_points) -> np.ndarray:
        """Canvas pixel positions ``(x, y)`` as data coordinates."""
        points = np.asarray(canvas_points, dtype=float).reshape(-1, 2)
        return self.canvas.scene.node_transform(self.view.scene).map(points)[:, :2]

    def to_canvas(self, data_points) -> np.ndarray:
        """Data coordinates as canvas pixel positions ``(x, y)``.

        The camera and the widget layout only scale and shift, so two mapped
        points give the whole map: one multiply-add per point.
        """
        points = np.asarray(data_points, dtype=np.float64).reshape(-1, 2)
        ends = self.view.scene.node_transform(self.canvas.scene).map(np.array([[0.0, 0.0], [1.0, 1.0]]))
        ends = ends[:, :2] / ends[:, 3:4]
        return points * (ends[1] - ends[0]) + ends[0]

    def show_outline(self, canvas_points) -> None:
        """Draw a closed outline through canvas positions (None or empty: hide it)."""
        points = [] if canvas_points is None else [tuple(p) for p in np.asarray(canvas_points, float)]
        self.outline.visible = len(points) >= 2
        if self.outline.visible:
            self.outline.set_data(pos=self.to_data(points + points[:1]), color=OUTLINE_COLOUR)

    def select_polygon(self, canvas_points, mode: str = "replace") -> np.ndarray:
        """Select the points inside an outline drawn on the canvas (pixels); emits ``selected``.

        The outline stays drawn until the next one is started.
        """
        self.show_outline(canvas_points)
        rows = self._rows_in_screen_polygon(np.asarray(canvas_points, dtype=float).reshape(-1, 2))
        self.selected.emit(rows, mode)
        return rows

    def _rows_in_screen_polygon(self, outline: np.ndarray) -> np.ndarray:
        """Rows of the points whose screen pixel lies inside the outline, filled as a pixel mask."""
        from skimage.draw import polygon

        if len(outline) < 3 or not len(self.xy):
            return np.zeros(0, np.int64)
        width, height = (int(v) for v in self.canvas.size)
        mask = np.zeros((height, width), dtype=bool)
        mask[polygon(outline[:, 1], outline[:, 0], shape=mask.shape)] = True
        screen = np.floor(self.to_canvas(self.xy)).astype(np.int64)
        on = (screen[:, 0] >= 0) & (screen[:, 0] < width) & (screen[:, 1] >= 0) & (screen[:, 1] < height)
        rows = np.flatnonzero(on)
        return rows[mask[screen[rows, 1], screen[rows, 0]]].astype(np.int64)

    def select_box(self, corner_a, corner_b, mode: str = "replace") -> np.ndarray:
        """Select the points in a rectangle between two canvas positions; emits ``selected``."""
        (ax, ay), (bx, by) = corner_a[:2], corner_b[:2]
        self.show_outline([(ax, ay), (bx, ay), (bx, by), (ax, by)])
        (ax, ay), (bx, by) = self.to_data([corner_a[:2], corner_b[:2]])
        low, high = (min(ax, bx), min(ay, by)), (max(ax, bx), max(ay, by))
        xy = self.xy
        rows = np.flatnonzero((xy[:, 0] >= low[0]) & (xy[:, 0] <= high[0]) &
                              (xy[:, 1] >= low[1]) & (xy[:, 1] <= high[1])).astype(np.int64)
        self.selected.emit(rows, mode)
        return rows

    def nearest_row(self, canvas_point) -> int | None:
        """The row of the point nearest a canvas position, if within :data:`CLICK_RADIUS` pixels."""
        if not len(self.xy):
            return None
        distance = np.hypot(*(self.to_canvas(self.xy) - np.asarray(canvas_point, float)).T)
        row = int(np.argmin(distance))
        return row if distance[row] <= CLICK_RADIUS else None

    # -- mouse --------------------------------------------------------------------------
    @staticmethod
    def _selection_mode(event) -> str:
        modifiers = tuple(event.modifiers or ())
        if keys.SHIFT in modifiers:
            return "add"
        return "remove" if keys.CONTROL in modifiers or keys.ALT in modifiers else "replace"

    def _on_press(self, event) -> None:
        if event.button != 1:
            return
        self._press = tuple(event.pos[:2])
        self._moved = False
        self._drag = [self._press] if self.mode != "pan" else []
        if self._drag:
            self.outline.visible = False

    def _on_move(self, event) -> None:
        if self._press is None or not event.is_dragging:
            return
        position = tuple(event.pos[:2])
        self._moved = self._moved or bool(np.hypot(*(np.asarray(position, float) - self._press)) > 3)
        if not self._drag:
            return
        if self.mode == "lasso":
            self._drag.append(position)
            self.show_outline(self._drag)
        else:
            self._drag = [self._drag[0], position]
            (ax, ay), (bx, by) = self._drag
            self.show_outline([(ax, ay), (bx, ay), (bx, by), (ax, by)])

    def _on_release(self, event) -> None:
        if event.button != 1 or self._press is None:
            return
        press, drag, self._press, self._drag = self._press, self._drag, None, []
        if not self._moved:
            row = self.nearest_row(press)
            if row is not None:
                self.clicked.emit(row)
            return
        mode = self._selection_mode(event)
        if self.mode == "lasso" and len(drag) >= 3:
            self.select_polygon(drag, mode)
        elif self.mode == "box" and len(drag) == 2:
            self.select_box(drag[0], drag[1], mode)
