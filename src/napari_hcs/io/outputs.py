"""Where commands write: never over an input, whole folders or nothing, data names kept inside.

Every command checks its outputs here before it writes anything:

- :func:`check_outputs` refuses an output that is one of the inputs, lies inside
  one, or holds one (replacing it would delete the input); paths are resolved, so
  ``./a.tif``, a symbolic link and a hard link to the same file are the same.
- :func:`check_new_file` and :func:`check_replaceable` refuse to replace what
  exists unless the user asked for it (``--overwrite``).
- :func:`atomic_folder` writes a folder (a Zarr store) beside its target under a
  hidden name and moves it into place only when it is complete.
- :func:`safe_name` and :func:`file_inside` turn names that come from data (a
  label column, a class) into file names that stay inside a folder.

Refusals raise :class:`OutputRefused`, a :class:`FileExistsError` that is also a
:class:`ValueError`, naming both paths.

Examples
--------
>>> image = tmp_path / "image.tif"
>>> _ = image.write_bytes(b"pixels")
>>> check_outputs([tmp_path / "labels.tif"], [image])
>>> check_outputs([tmp_path / "." / "image.tif"], [image])
Traceback (most recent call last):
...
napari_hcs.io.outputs.OutputRefused: Output ... is the input ...image.tif: a command never writes over its input; choose another output.
>>> safe_name("x/../../y")
'x_.._.._y'
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

__all__ = [
    "OutputRefused",
    "atomic_folder",
    "check_new_file",
    "check_outputs",
    "check_replaceable",
    "file_inside",
    "root_attributes",
    "safe_name",
]

PathLike = str | os.PathLike
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_LENGTH = 120


class OutputRefused(FileExistsError, ValueError):
    """An output a command will not write: it is an input, holds one, or already exists."""


def _resolved(path: PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _same_file(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(outputs: Iterable[PathLike | None], inputs: Iterable[PathLike | None]) -> None:
    """Refuse outputs that are, lie inside or hold one of the inputs, or repeat each other.

    ``None`` entries (an output or input not used) are skipped.

    Raises
    ------
    OutputRefused
        Naming the output and the input (or the two outputs).

    Examples
    --------
    >>> check_outputs([tmp_path / "plate" / "out.zarr"], [tmp_path / "plate"])
    Traceback (most recent call last):
    ...
    napari_hcs.io.outputs.OutputRefused: Output ...out.zarr lies inside the input ...plate; choose an output outside it.
    """
    outs = [(out, _resolved(out)) for out in outputs if out is not None]
    ins = [(source, _resolved(source)) for source in inputs if source is not None]
    for out, out_path in outs:
        for source, in_path in ins:
            if _same_file(out_path, in_path):
                raise OutputRefused(
                    f"Output {out} is the input {source}: a command never writes over its input; "
                    "choose another output."
                )
            if in_path in out_path.parents:
                raise OutputRefused(f"Output {out} lies inside the input {source}; choose an output outside it.")
            if out_path in in_path.parents:
                raise OutputRefused(
                    f"Output {out} holds the input {source}; replacing it would delete the input. "
                    "Choose another output."
                )
    seen: dict[Path, PathLike] = {}
    for out, out_path in outs:
        if out_path in seen:
            raise OutputRefused(f"Outputs {seen[out_path]} and {out} are the same file; give them different names.")
        seen[out_path] = out


def check_new_file(path: PathLike, *, overwrite: bool, what: str = "Output file", flag: str = "--overwrite") -> None:
    """Refuse a file output that is a folder, or that exists when ``overwrite`` is False.

    Examples
    --------
    >>> model = tmp_path / "model.pt"
    >>> _ = model.write_bytes(b"weights")
    >>> check_new_file(model, overwrite=False, what="Model file")
    Traceback (most recent call last):
    ...
    napari_hcs.io.outputs.OutputRefused: Model file ...model.pt exists; pass --overwrite to replace it, or choose another name.
    >>> check_new_file(model, overwrite=True)
    """
    path = Path(path)
    if path.is_dir():
        raise OutputRefused(f"{what} {path} is a folder; expected the path of a file.")
    if os.path.lexists(path) and not overwrite:
        raise OutputRefused(f"{what} {path} exists; pass {flag} to replace it, or choose another name.")


def check_replaceable(
    path: PathLike,
    *,
    overwrite: bool,
    ours: Callable[[Path], bool] | None = None,
    what: str = "written by napari-hcs",
    flag: str = "--overwrite",
) -> None:
    """Refuse to replace an existing ``path`` unless it is empty, ``ours(path)``, or ``overwrite``.

    Examples
    --------
    >>> folder = tmp_path / "results"
    >>> _ = folder.mkdir(), (folder / "notes.txt").write_text("keep me")
    >>> check_replaceable(folder, overwrite=False, what="an OME-Zarr plate written by napari-hcs")
    Traceback (most recent call last):
    ...
    napari_hcs.io.outputs.OutputRefused: Output ...results exists and is not an OME-Zarr plate written by napari-hcs; it is left as it is. Pass --overwrite to replace it, or choose another output.
    """
    path = Path(path)
    if not os.path.lexists(path) or overwrite:
        return
    if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
        return
    if ours is not None and ours(path):
        return
    raise OutputRefused(
        f"Output {path} exists and is not {what}; it is left as it is. "
        f"Pass {flag} to replace it, or choose another output."
    )


def root_attributes(path: PathLike) -> dict:
    """The root attributes of a Zarr store (format 2 or 3), or ``{}`` when it is not one.

    Read as plain JSON, so that any folder or file can be asked.
    """
    path = Path(path)
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        try:
            value = json.loads((path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        value = value.get(key, {}) if key and isinstance(value, dict) else value
        if isinstance(value, dict):
            return value
    return {}


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


@contextmanager
def atomic_folder(path: PathLike) -> Iterator[Path]:
    """Yield a hidden temporary folder path beside ``path``; on success it replaces ``path``.

    When the block raises (an error, :class:`KeyboardInterrupt`, a cancel), the
    temporary folder is removed and ``path`` is left as it was. What was at
    ``path`` is removed only after the new folder is in place.

    Examples
    --------
    >>> with atomic_folder(tmp_path / "store.zarr") as tmp:
    ...     _ = tmp.mkdir(), (tmp / "data").write_text("whole")
    >>> sorted(p.name for p in tmp_path.iterdir())
    ['store.zarr']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}.{threading.get_ident()}"
    tmp = path.with_name(f".{path.name}.{tag}.tmp")
    _remove(tmp)
    try:
        yield tmp
        _move_into_place(tmp, path, path.with_name(f".{path.name}.{tag}.old"))
    finally:
        _remove(tmp)


def _move_into_place(tmp: Path, path: Path, old: Path) -> None:
    if not os.path.lexists(path):
        os.replace(tmp, path)
        return
    _remove(old)
    os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old, path)
        raise
    _remove(old)


def safe_name(text: object, *, default: str = "unnamed") -> str:
    """A file name made of ``[A-Za-z0-9._-]`` only, with no leading dot.

    Every other run of characters (separators, spaces, ``:``) becomes ``_``; the
    name is cut to 120 characters.

    Examples
    --------
    >>> safe_name("wrn_treatment class"), safe_name("../.."), safe_name("C:\\\\temp")
    ('wrn_treatment_class', '_..', 'C_temp')
    >>> safe_name("...")
    'unnamed'
    """
    name = _UNSAFE.sub("_", str(text)).lstrip(".")[:MAX_NAME_LENGTH]
    return name or default


def file_inside(folder: PathLike, name: str) -> Path:
    """Return ``folder / name``, refusing a name that leaves the folder once resolved.

    Raises
    ------
    OutputRefused
        When the path resolves outside ``folder`` (a separator, ``..`` or a link).

    Examples
    --------
    >>> file_inside(tmp_path, safe_name("x/../../y") + ".pt").name
    'x_.._.._y.pt'
    >>> file_inside(tmp_path, "../y.pt")
    Traceback (most recent call last):
    ...
    napari_hcs.io.outputs.OutputRefused: The file name '../y.pt' leaves the folder ...; names from data are kept inside it.
    """
    folder = Path(folder)
    path = folder / name
    if _resolved(folder) not in _resolved(path).parents:
        raise OutputRefused(f"The file name {name!r} leaves the folder {folder}; names from data are kept inside it.")
    return path
