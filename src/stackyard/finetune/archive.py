"""A run's folder (an adapter, a model, a checkpoint) as one tar stream of its files, and
back: how tuned weights go into the database and how Ray workers send checkpoints to the
driver. Unpacking writes the folder complete or not at all."""

from __future__ import annotations

import shutil
import tarfile
from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO


def pack(folder: Path, out: BinaryIO, *, left_out: Collection[str] = ()) -> None:
    """Write ``folder``'s files (not its sub-folders, nor ``left_out``) to ``out`` as a tar."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name not in left_out:
                tar.add(path, arcname=path.name)


def unpack(source: BinaryIO, folder: Path, *, marker: str | None = None) -> Path:
    """Extract ``source`` (from :func:`pack`) as ``folder``, replacing it; ``marker``: an
    empty file written last, that says the folder is complete."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(fileobj=source, mode="r") as tar:
        tar.extractall(partial, filter="data")
    if marker:
        (partial / marker).touch()
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    return folder
