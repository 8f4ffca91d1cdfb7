"""The shape of the package: layers, registries and sizes that the code must keep.

- Nothing outside ``widgets/`` imports Qt, napari or magicgui (the core, the
  command line and the viewer session run without a display).
- Every ``choices`` list of the command line is the registry the core uses.
- No module holds more than about 400 lines of code, no function more than about
  60, and no function takes more than a dozen parameters.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

import napari_hcs
from napari_hcs import vocabulary

PACKAGE = Path(napari_hcs.__file__).parent
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
GUI_LIBRARIES = {"qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "superqt", "vispy"}

MAX_MODULE_CODE_LINES = 400
MAX_FUNCTION_CODE_LINES = 60
MAX_PARAMETERS = 12


def _relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _imported_roots(tree: ast.Module) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines |= set(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def _code_lines(source_lines: list[str], first: int, last: int, skip: set[int]) -> int:
    """Lines from ``first`` to ``last`` (1-based) that are neither blank, comments nor docstrings."""
    count = 0
    for number in range(first, last + 1):
        text = source_lines[number - 1].strip()
        if text and not text.startswith("#") and number not in skip:
            count += 1
    return count


@pytest.mark.parametrize("path", [p for p in MODULES if not _relative(p).startswith("widgets/")], ids=_relative)
def test_nothing_outside_widgets_imports_a_gui_library(path):
    assert not _imported_roots(_tree(path)) & GUI_LIBRARIES


def test_widgets_are_the_only_qt_package():
    with_gui = {_relative(p).split("/")[0] for p in MODULES if _imported_roots(_tree(p)) & GUI_LIBRARIES}
    assert with_gui == {"widgets"}


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_modules_and_functions_are_small(path):
    source = path.read_text()
    tree = ast.parse(source)
    lines = source.splitlines()
    docstrings = _docstring_lines(tree)
    assert _code_lines(lines, 1, len(lines), docstrings) <= MAX_MODULE_CODE_LINES
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body_start = node.body[0].lineno
            size = _code_lines(lines, body_start, node.end_lineno, docstrings)
            assert size <= MAX_FUNCTION_CODE_LINES, f"{node.name} has {size} lines of code"
            arguments = node.args
            names = [a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs]
            names = [n for n in names if n not in ("self", "cls")]
            assert len(names) <= MAX_PARAMETERS, f"{node.name} takes {len(names)} parameters"


# -- the command line's choices are the core's registries ---------------------------------
def _choice_actions() -> list[tuple[str, str, tuple]]:
    from napari_hcs.cli import build_parser

    found = []
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        for action in command._actions:
            if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
                found.append((name, action.option_strings[0] if action.option_strings else action.dest,
                              tuple(action.choices)))
    return found


def _registries() -> dict[str, tuple]:
    from napari_hcs.io import PRESETS
    from napari_hcs.learn import METHODS
    from napari_hcs.nn.models import MODELS
    from napari_hcs.pipeline import POOLS

    return {
        "--threshold": vocabulary.AUTOMATIC_THRESHOLDS,
        "--pool": POOLS,
        "--model": tuple(MODELS),
        "--schedule": vocabulary.SCHEDULES,
        "--monitor": vocabulary.MONITORS,
        "--normalisation": vocabulary.NORMALISATIONS,
        "--intensity": vocabulary.INTENSITY_SCALES,
        "--resize-mode": vocabulary.RESIZE_MODES,
        "--device": vocabulary.DEVICE_CHOICES,
        "--ngff-version": vocabulary.NGFF_VERSIONS,
        "--methods": METHODS,
        "--pattern": tuple(PRESETS),
        "--source": vocabulary.EMBEDDING_SOURCES,
        "embed-sites --source": vocabulary.SITE_EMBEDDING_SOURCES,
        "--reduction": vocabulary.REDUCTIONS,
        "--method": vocabulary.CLUSTER_METHODS,
        "--linkage": vocabulary.CLUSTER_LINKAGES,
        "--aggregate": vocabulary.AGGREGATIONS,
        "--profile-normalisation": vocabulary.PROFILE_NORMALISATIONS,
        "--feature-select": vocabulary.FEATURE_SELECTIONS,
        "--format": vocabulary.EXPORT_FORMATS,
        "--level": vocabulary.EXPORT_LEVELS,
        "--steps": vocabulary.PREPROCESS_STEPS,
        "--illumination-method": vocabulary.ILLUMINATION_METHODS,
    }


def test_every_cli_choice_list_is_a_core_registry():
    registries = _registries()
    actions = _choice_actions()
    assert actions, "the command line offers no choices at all"
    for command, option, choices in actions:
        # A registry named "command option" is that command's own; else the option's everywhere.
        key = f"{command} {option}" if f"{command} {option}" in registries else option
        assert key in registries, f"{command} {option}: choices {choices} come from no known registry"
        assert choices == tuple(registries[key]), f"{command} {option}"


def test_core_registries_agree_with_the_vocabulary():
    from napari_hcs.learn import METHODS
    from napari_hcs.nn.models import MODELS
    from napari_hcs.pipeline import POOLS

    assert tuple(MODELS) == vocabulary.MODEL_NAMES
    assert tuple(METHODS) == vocabulary.BASELINE_METHODS
    assert tuple(POOLS) == vocabulary.POOLS
    assert set(vocabulary.AUTOMATIC_THRESHOLDS) <= set(vocabulary.THRESHOLD_METHODS)
