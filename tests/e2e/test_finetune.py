"""Fine-tuning through the official OpenAI SDK against a real gateway: upload a dataset, run a
job on SmolLM2 that lowers the loss and evaluates against the base, call the tuned model; pause
and resume; a server restart mid-job resumes from the checkpoint; cancel; clear errors."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import GatewayProcess, need_module, openai_sdk, require_local_models
from tests.ui.conftest import Browser

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MASTER = "sk-master-finetune-0123456789"
ALPACA = Path(__file__).resolve().parents[3] / "shared" / "data" / "alpaca" / "alpaca_5000.json"


def dataset(count: int) -> bytes:
    """Short Alpaca examples, every answer ending the same odd way (easy to learn, easy to
    see in an answer)."""
    if ALPACA.exists():
        records = json.loads(ALPACA.read_text())[:300]
        rows = [r for r in records if len(r["output"]) < 60 and len(r["instruction"]) < 100]
    else:
        rows = [
            {"instruction": f"Name the number {i}.", "input": "", "output": str(i)}
            for i in range(40)
        ]
    lines = [json.dumps({**r, "output": r["output"] + " Quack quack."}) for r in rows[:count]]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_local_models()
    shared = tmp_path_factory.mktemp("finetune")
    return {
        "models": [{"name": "smollm2", "provider": "local", "model": "smollm2"}],
        "auth": {"master_key": MASTER},
        "database_url": f"sqlite:///{shared / 'stackyard.db'}",
        "finetune": {"data_dir": str(shared / "jobs")},
    }


@pytest.fixture(scope="module")
def gateway(config: dict[str, Any], gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(config, ready_timeout=240)
    return gw


def sdk(gateway: GatewayProcess) -> openai.OpenAI:
    return openai_sdk(gateway, MASTER)


def wait_for(client: openai.OpenAI, job_id: str, statuses: set[str], timeout: float = 900) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        assert job.status not in {"failed", "cancelled"} - statuses, job.error
        assert time.monotonic() < deadline, f"{job_id} is still {job.status}"
        time.sleep(0.5)


def messages(client: openai.OpenAI, job_id: str) -> list[str]:
    events = client.fine_tuning.jobs.list_events(job_id, limit=100).data
    return [e.message for e in reversed(events)]


def test_a_job_trains_evaluates_and_serves_its_model(gateway: GatewayProcess) -> None:
    with sdk(gateway) as client:
        uploaded = client.files.create(file=("train.jsonl", dataset(10)), purpose="fine-tune")
        assert uploaded.purpose == "fine-tune"
        job = client.fine_tuning.jobs.create(
            model="smollm2",
            training_file=uploaded.id,
            suffix="quack",
            seed=7,
            hyperparameters={"n_epochs": 4, "batch_size": 4, "learning_rate_multiplier": 10},
            extra_body={
                "method": {
                    "type": "supervised",
                    "lora": {"checkpoint_every": 3, "eval_examples": 2, "eval_max_new_tokens": 24},
                }
            },
        )
        assert job.status == "validating_files"
        done = wait_for(client, job.id, {"succeeded"})
        assert done.fine_tuned_model == f"ft:smollm2:quack:{job.id.removeprefix('ftjob-')[:12]}"
        assert done.trained_tokens
        assert done.trained_tokens > 0
        events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
        metrics = [e.data for e in reversed(events) if e.type == "metrics"]
        assert len(metrics) == 12  # 9 training examples (one held out), batches of 4, 4 epochs
        first, last = metrics[0]["train_loss"], metrics[-1]["train_loss"]  # type: ignore[index]
        assert last < first
        evaluation = (done.model_extra or {})["evaluation"]
        assert evaluation["tuned"]["validation_loss"] < evaluation["base"]["validation_loss"]
        checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
        assert [c.step_number for c in checkpoints] == [9, 6, 3]
        results = client.files.content(done.result_files[0]).text
        assert results.startswith("step,train_loss")
        question: list[Any] = [{"role": "user", "content": "Name a primary colour."}]
        tuned = client.chat.completions.create(
            model=done.fine_tuned_model, messages=question, temperature=0, max_tokens=24
        )
        base = client.chat.completions.create(
            model="smollm2", messages=question, temperature=0, max_tokens=24
        )
        # The tuned model answers differently (greedy decoding on both). Its exact words
        # differed between two installs: "quack" in one, a longer sentence in a fresh clone.
        assert tuned.choices[0].message.content != base.choices[0].message.content
        assert done.fine_tuned_model in [m.id for m in client.models.list().data]
    with Browser(base_url=gateway.url, timeout=30) as console:  # the job's console page
        assert console.login(MASTER).status_code == 303
        page = console.get(f"/ui/finetune/{job.id}").text
        curve = page.split("<title>Training loss by step</title>")[1].split("</svg>")[0]
        assert curve.count("<circle") == 12
        assert '<table id="evaluation">' in page
        assert f"<code>{done.fine_tuned_model}:ckpt-step-9</code>" in page


def test_full_tuning_and_models_served_from_the_database(
    config: dict[str, Any], gateway: GatewayProcess, gateway_factory: Any
) -> None:
    with sdk(gateway) as client:
        lora = next(j for j in client.fine_tuning.jobs.list().data if j.status == "succeeded")
        checkpoint = client.fine_tuning.jobs.checkpoints.list(lora.id).data[-1]
        uploaded = client.files.create(file=("full.jsonl", dataset(9)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(
            model="smollm2",
            training_file=uploaded.id,
            suffix="whole",
            hyperparameters={"n_epochs": 1, "batch_size": 4},
            extra_body={
                "method": {"lora": {"tuning": "full", "eval_examples": 1, "eval_max_new_tokens": 8}}
            },
        )
        assert job.hyperparameters.learning_rate_multiplier == 1  # of full tuning's 2e-5
        done = wait_for(client, job.id, {"succeeded"})
        evaluation = (done.model_extra or {})["evaluation"]
        assert evaluation["tuned"]["validation_loss"] < evaluation["base"]["validation_loss"]
        assert any(m.startswith("Evaluation on 1 validation") for m in messages(client, job.id))

    # Another instance on the same database, with a data_dir of its own: it serves the LoRA
    # model, one of its checkpoints and the fully tuned model from the weights in the database.
    elsewhere = {
        **config,
        "finetune": {"data_dir": str(Path(config["finetune"]["data_dir"]).parent / "other")},
    }
    other: GatewayProcess = gateway_factory(elsewhere, ready_timeout=240)
    question: list[Any] = [{"role": "user", "content": "Name a primary colour."}]
    with sdk(other) as client:
        names = [
            lora.fine_tuned_model,
            checkpoint.fine_tuned_model_checkpoint,
            done.fine_tuned_model,
        ]
        assert checkpoint.fine_tuned_model_checkpoint == f"{lora.fine_tuned_model}:ckpt-step-3"
        for name in names:
            deadline = time.monotonic() + 120  # a whole model is unpacked by the next poll
            while True:
                try:
                    answer = client.chat.completions.create(
                        model=str(name), messages=question, temperature=0, max_tokens=8
                    )
                    break
                except openai.NotFoundError:
                    assert time.monotonic() < deadline, f"{name} is not served"
                    time.sleep(1)
            assert answer.model == name
            assert answer.choices[0].message.content
    other.stop()  # it would take the next test's jobs over


def test_pause_resume_restart_and_cancel(
    config: dict[str, Any], gateway: GatewayProcess, gateway_factory: Any
) -> None:
    with sdk(gateway) as client:
        uploaded = client.files.create(file=("long.jsonl", dataset(12)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(
            model="smollm2",
            training_file=uploaded.id,
            hyperparameters={"n_epochs": 4, "batch_size": 1},
            extra_body={
                "method": {
                    "lora": {"checkpoint_every": 2, "eval_examples": 1, "eval_max_new_tokens": 8}
                }
            },
        )
        deadline = time.monotonic() + 300
        while not any(m.startswith("Checkpoint written") for m in messages(client, job.id)):
            assert time.monotonic() < deadline
            time.sleep(0.5)
        paused = client.fine_tuning.jobs.pause(job.id)
        assert (paused.model_extra or {})["paused"]
        wait_for(client, job.id, {"queued"})
        assert any(m.startswith("Paused at step") for m in messages(client, job.id))
        client.fine_tuning.jobs.resume(job.id)
        wait_for(client, job.id, {"running"})
    gateway.stop()  # mid-job: the worker checkpoints and stops; the job stays running

    # Another machine takes the job over: the checkpoint comes from the database.
    moved = {
        **config,
        "finetune": {"data_dir": str(Path(config["finetune"]["data_dir"]) / "moved")},
    }
    restarted: GatewayProcess = gateway_factory(moved, ready_timeout=240)
    with sdk(restarted) as client:
        done = wait_for(client, job.id, {"succeeded"})
        said = messages(client, done.id)
        assert any(m.startswith("Interrupted at step") for m in said)
        resumed = [m for m in said if m.startswith("Resumed from the checkpoint")]
        assert len(resumed) >= 2  # after the pause, and after the restart

        doomed = client.fine_tuning.jobs.create(model="smollm2", training_file=uploaded.id)
        cancelled = client.fine_tuning.jobs.cancel(doomed.id)
        assert wait_for(client, cancelled.id, {"cancelled"}).status == "cancelled"
        with pytest.raises(openai.BadRequestError) as again:
            client.fine_tuning.jobs.cancel(doomed.id)
        assert again.value.code == "invalid_job_state"
        listed = client.fine_tuning.jobs.list(limit=2)
        assert [j.id for j in listed.data] == [doomed.id, job.id]


def test_mistakes_are_refused_clearly(gateway_factory: Any, config: dict[str, Any]) -> None:
    # Nothing here needs the model loaded, or a worker.
    lazy = [{**config["models"][0], "options": {"load": "lazy"}}]
    gateway: GatewayProcess = gateway_factory(
        {**config, "models": lazy, "finetune": {"max_workers": 0}}, ready_timeout=240
    )
    with sdk(gateway) as client:
        with pytest.raises(openai.BadRequestError) as bad_file:
            client.files.create(
                file=("bad.jsonl", b'{"prompt": "x"}\nnot json\n'), purpose="fine-tune"
            )
        assert "line 1" in str(bad_file.value)
        assert "line 2" in str(bad_file.value)
        good = client.files.create(file=("ok.jsonl", dataset(3)), purpose="fine-tune")
        with pytest.raises(openai.BadRequestError) as bad_model:
            client.fine_tuning.jobs.create(model="gpt-4o", training_file=good.id)
        assert bad_model.value.code == "model_not_available"
        with pytest.raises(openai.NotFoundError):
            client.fine_tuning.jobs.create(model="smollm2", training_file="file-missing")
        with pytest.raises(openai.BadRequestError) as bad_hyper:
            client.fine_tuning.jobs.create(
                model="smollm2", training_file=good.id, hyperparameters={"n_epochs": 0}
            )
        assert bad_hyper.value.code == "invalid_hyperparameters"
        with pytest.raises(openai.NotFoundError):
            client.fine_tuning.jobs.retrieve("ftjob-nope")


def test_a_job_trains_on_a_ray_cluster(
    config: dict[str, Any], gateway_factory: Any, tmp_path: Path
) -> None:
    need_module("ray.train")
    on_ray = {
        **config,
        "database_url": f"sqlite:///{tmp_path / 'ray.db'}",
        "finetune": {"data_dir": str(tmp_path / "jobs"), "ray_workers": 2},
        "ray_address": "local",
    }
    gateway: GatewayProcess = gateway_factory(on_ray, ready_timeout=240)
    with sdk(gateway) as client:
        uploaded = client.files.create(file=("ray.jsonl", dataset(9)), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(
            model="smollm2",
            training_file=uploaded.id,
            suffix="ray",
            hyperparameters={"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 10},
            extra_body={
                "method": {
                    "lora": {"checkpoint_every": 2, "eval_examples": 1, "eval_max_new_tokens": 8}
                }
            },
        )
        done = wait_for(client, job.id, {"succeeded"})
        said = messages(client, job.id)
        assert "Training on the Ray cluster local with 2 workers" in said
        steps = [m for m in said if m.startswith("Step ")]
        assert [s.split(":")[0] for s in steps] == ["Step 1/4", "Step 2/4", "Step 3/4", "Step 4/4"]
        checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
        assert [c.step_number for c in checkpoints] == [2]
        evaluation = (done.model_extra or {})["evaluation"]
        assert evaluation["tuned"]["validation_loss"] < evaluation["base"]["validation_loss"]
        answer = client.chat.completions.create(
            model=str(done.fine_tuned_model),
            messages=[{"role": "user", "content": "Name a primary colour."}],
            max_tokens=8,
        )
        assert answer.choices[0].message.content
