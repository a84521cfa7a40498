"""The fine-tuning pages: jobs listed for their team only, a job's loss curve drawn from its
metrics events, its evaluation against the base model, checkpoints, events, and the pause
and cancel buttons. The jobs are written to the gateway's database with our own job store,
as a worker would write them."""

from __future__ import annotations

import re

import httpx

from stackyard.finetune.jobs import now
from tests.conftest import GatewayProcess, team_key
from tests.ui.conftest import MASTER, a_job, browser, metrics


def team_id(gateway: GatewayProcess, name: str) -> str:
    teams = httpx.get(
        f"{gateway.url}/admin/teams", headers={"authorization": f"Bearer {MASTER}"}
    ).json()
    rows = teams["data"] if isinstance(teams, dict) else teams
    found: str = next(t["id"] for t in rows if t["name"] == name)
    return found


def test_a_running_job_shows_its_loss_curve_live_and_can_be_paused(
    gateway: GatewayProcess,
) -> None:
    member = team_key(gateway, "tuners", MASTER)
    outsider = team_key(gateway, "others", MASTER)
    jobs, job_id = a_job(gateway, team_id(gateway, "tuners"))
    jobs.beat(job_id, status="running")
    for step in range(1, 12):  # steps 10 and 11 must come after 9 on the axis, not after 1
        jobs.event(job_id, "info", f"Step {step}/12", metrics(step, 3.0 - 0.2 * step))
    with browser(gateway, member) as client:
        listing = client.get("/ui/finetune")
        assert f'<a href="/ui/finetune/{job_id}">{job_id}</a>' in listing.text
        page = client.get(f"/ui/finetune/{job_id}")
        assert page.status_code == 200
        assert 'id="job-live" data-refresh="5"' in page.text  # refreshed while it runs
        assert "step 11 of 12 (epoch 1)" in page.text
        curve = page.text.split("<title>Training loss by step</title>")[1].split("</svg>")[0]
        xs = [float(p.split(",")[0]) for p in curve.split('points="')[1].split('"')[0].split()]
        assert len(xs) == 11
        assert xs == sorted(xs)
        assert "training loss 10: 1" in curve  # a point's value, on hover
        assert "<title>Tokens a second by step</title>" in page.text
        paused = client.post(f"/ui/finetune/{job_id}", data={"action": "pause"})
        assert paused.status_code == 303
        assert "(pausing or paused)" in client.get(f"/ui/finetune/{job_id}").text
        wrong = client.post(f"/ui/finetune/{job_id}", data={"action": "explode"})
        assert wrong.status_code == 400
        assert "unknown action" in wrong.text
    with browser(gateway, outsider) as other:
        assert job_id not in other.get("/ui/finetune").text
        assert other.get(f"/ui/finetune/{job_id}").status_code == 404
        assert other.post(f"/ui/finetune/{job_id}", data={"action": "cancel"}).status_code == 404
    assert jobs.get(job_id)["status"] == "running"  # the other team's cancel did nothing


def test_a_finished_job_shows_its_evaluation_against_the_base_model(
    gateway: GatewayProcess,
) -> None:
    jobs, job_id = a_job(gateway, None)
    jobs.event(job_id, "info", "Step 1/1", metrics(1, 1.5))
    evaluation = {
        "examples": 4,
        "base": {"validation_loss": 2.5, "exact_match": 0.0, "f1": 0.1, "samples": []},
        "tuned": {
            "validation_loss": 1.25,
            "exact_match": 0.5,
            "f1": 0.6,
            "samples": [{"expected": "Paris", "answer": "Paris"}],
        },
    }
    jobs.event(job_id, "info", "Evaluation", {"type": "evaluation", **evaluation})
    jobs.release(
        job_id,
        status="succeeded",
        fine_tuned_model="ft:smollm2:ui:abc",
        finished_at=now(),
        result={"evaluation": evaluation},
    )
    with browser(gateway, MASTER) as client:
        page = client.get(f"/ui/finetune/{job_id}")
        assert "data-refresh" not in page.text  # nothing left to watch
        assert "<code>ft:smollm2:ui:abc</code>" in page.text
        assert re.search(r"<dt>Finished</dt><dd>20\d\d-\d\d-\d\d \d\d:\d\d:\d\d</dd>", page.text)
        table = page.text.split('<table id="evaluation">')[1].split("</table>")[0]
        assert "validation loss (lower is better)" in table
        assert '<td class="num good">-1.2500</td>' in table
        assert '<td class="num good">+0.5000</td>' in table
        assert "Evaluation" in page.text  # the events, newest first
        assert client.get("/ui/finetune/ftjob-missing").status_code == 404
