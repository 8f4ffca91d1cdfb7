"""The npe2 manifest validates, and every command it names imports."""

import importlib
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_top_level_manifest_is_the_package_copy():
    top = ROOT / "napari.yaml"
    assert top.is_symlink()
    assert top.resolve() == (ROOT / "src" / "napari_hcs" / "napari.yaml").resolve()


def test_npe2_validate_passes():
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-hcs"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_command_resolves():
    manifest = yaml.safe_load((ROOT / "napari.yaml").read_text())
    for command in manifest["contributions"]["commands"]:
        module, _, attribute = command["python_name"].partition(":")
        assert hasattr(importlib.import_module(module), attribute), command["python_name"]
