"""A run's folder packed into one stream and unpacked elsewhere: files only, some left out,
the old folder replaced, and the completion marker written last."""

from __future__ import annotations

import io
from pathlib import Path

from stackyard.finetune.archive import pack, unpack


def test_a_folder_round_trips_without_what_is_left_out(tmp_path: Path) -> None:
    source = tmp_path / "run"
    (source / "nested").mkdir(parents=True)
    (source / "adapter_model.safetensors").write_bytes(b"\x00weights\xff")
    (source / "adapter_config.json").write_text('{"r": 8}')
    (source / "README.md").write_text("card")
    (source / "nested" / "ignored.txt").write_text("sub-folders are not part of a run")
    stream = io.BytesIO()
    pack(source, stream, left_out={"README.md"})

    target = tmp_path / "copy"
    target.mkdir()
    (target / "stale.bin").write_bytes(b"from an older copy")
    stream.seek(0)
    assert unpack(stream, target, marker=".complete") == target
    assert sorted(p.name for p in target.iterdir()) == [
        ".complete",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert (target / "adapter_model.safetensors").read_bytes() == b"\x00weights\xff"
    assert not (tmp_path / "copy.partial").exists()
