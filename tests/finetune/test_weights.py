"""Tuned models' files in the store, on SQLite and PostgreSQL: stored in parts, unpacked once
into a local folder, optimizer state left out, a second copy replacing the first, and the names
of a job's checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackyard.finetune import weights as weights_module
from stackyard.finetune.jobs import model_name
from stackyard.finetune.weights import Weights, checkpoint_name
from stackyard.store.db import Database
from tests.finetune.test_jobs import make


def adapter_folder(root: Path, payload: bytes) -> Path:
    root.mkdir(parents=True)
    (root / "adapter_config.json").write_text('{"r": 8}')
    (root / "adapter_model.safetensors").write_bytes(payload)
    (root / "state.pt").write_bytes(b"optimizer state")
    (root / "README.md").write_text("a model card")
    return root


def test_an_adapter_goes_in_by_parts_and_comes_out_whole(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(weights_module, "PART", 1000)
    _, job = make(db, tmp_path)
    payload = bytes(range(256)) * 20  # 5,120 bytes: several parts
    folder = adapter_folder(tmp_path / "run" / "adapter", payload)
    name = model_name("smollm2", "demo", job["id"])
    stored = Weights(db, tmp_path / "cache-a")
    size = stored.put(job["id"], name, folder)
    assert size > len(payload)

    found = stored.find(name)
    assert found is not None
    assert (found.job_id, found.kind, found.step, found.bytes) == (job["id"], "adapter", None, size)

    other = Weights(db, tmp_path / "cache-b")  # another instance, without the run's folder
    served = other.fetch(name)
    assert served is not None
    assert served.parent == tmp_path / "cache-b"
    assert (served / "adapter_model.safetensors").read_bytes() == payload
    assert (served / "state.pt").read_bytes() == b"optimizer state"  # to resume elsewhere
    assert not (served / "README.md").exists()
    assert other.fetch(name) == served  # unpacked once
    assert other.fetch(name + "-nope") is None
    assert other.find(name + "-nope") is None


def test_checkpoints_and_replacement(db: Database, tmp_path: Path) -> None:
    _, job = make(db, tmp_path)
    name = model_name("smollm2", "demo", job["id"])
    stored = Weights(db, tmp_path / "cache")
    for step in (3, 6):
        folder = adapter_folder(tmp_path / f"step-{step}", f"step {step}".encode())
        stored.put(job["id"], checkpoint_name(name, step), folder, step=step)
    whole = tmp_path / "model"
    whole.mkdir()
    (whole / "config.json").write_text("{}")
    (whole / "model.safetensors").write_bytes(b"first")
    stored.put(job["id"], name, whole)
    (whole / "model.safetensors").write_bytes(b"second")
    stored.put(job["id"], name, whole)  # replaces the first copy

    assert stored.names(job["id"]) == sorted([name, f"{name}:ckpt-step-3", f"{name}:ckpt-step-6"])
    found = stored.find(f"{name}:ckpt-step-6")
    assert found is not None
    assert (found.kind, found.step) == ("adapter", 6)
    assert stored.latest_checkpoint(job["id"]) == found
    assert stored.latest_checkpoint("ftjob-other") is None
    resumed = stored.fetch(found.name, into=tmp_path / "taken-over" / "step-000006")
    assert resumed == tmp_path / "taken-over" / "step-000006"
    assert (resumed / "adapter_model.safetensors").read_bytes() == b"step 6"
    whole_found = stored.find(name)
    assert whole_found is not None
    assert whole_found.kind == "model"
    served = stored.fetch(name)
    assert served is not None
    assert (served / "model.safetensors").read_bytes() == b"second"
