"""The evaluation pages and the experiments API behind them: runs recorded through the API
(as ``stackyard eval run`` records them), the gate applied against a baseline, a run's items,
two runs compared, one team's runs hidden from another, and bad runs refused clearly."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import GatewayProcess, team_key
from tests.ui.conftest import MASTER, browser


def a_run(name: str, scores: list[float], version: int) -> dict[str, Any]:
    return {
        "name": name,
        "target": f"support@{version} on primary",
        "started_at": 1_764_000_000.0,
        "seconds": 1.5,
        "results": [
            {
                "item_id": f"item-{i}",
                "output": f"answer {i} from v{version}",
                "scores": {"f1": score},
                "reasons": {},
                "latency_ms": 100.0 + i,
                "input_tokens": 10,
                "output_tokens": 5,
                "cost_usd": 0.0001,
                "prompt_version": f"support@{version}",
                "error": None,
            }
            for i, score in enumerate(scores)
        ],
    }


def record(gateway: GatewayProcess, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/api/experiments", json=body, headers={"authorization": f"Bearer {key}"}
    )


def new_key(gateway: GatewayProcess, team: str) -> str:
    """A key for a new team, once the gateway knows it (a login waits for that)."""
    key = team_key(gateway, team, MASTER)
    with browser(gateway, key):
        return key


def test_runs_are_recorded_gated_listed_and_compared(gateway: GatewayProcess) -> None:
    key = new_key(gateway, "evaluators")
    base = record(gateway, key, {"run": a_run("support", [1.0] * 8, 1)})
    assert base.status_code == 200, base.text
    assert (base.json()["passed"], base.json()["prompt_version"]) == (None, 1)
    worse = record(
        gateway,
        key,
        {
            "run": a_run("support", [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5], 2),
            "thresholds": {"f1": 0.2},
            "baseline_id": base.json()["id"],
        },
    ).json()
    assert worse["passed"] is False  # above the threshold, but a significant drop
    check = worse["summary"]["checks"][0]
    assert check["baseline"] == 1.0
    assert check["p_value"] < 0.05

    with browser(gateway, key) as client:
        listing = client.get("/ui/evals").text
        assert listing.count('<a href="/ui/evals/exp-') == 2
        assert '<td class="bad">failed</td>' in listing
        assert "f1 0.312" in listing  # the mean of 2.5 / 8
        one = client.get(f"/ui/evals/{worse['id']}").text
        assert '<dd class="bad" id="verdict">failed</dd>' in one
        assert one.count('<pre class="output">answer') == 8
        assert f'href="/ui/evals/compare?a={base.json()["id"]}&amp;b={worse["id"]}"' in one
        compared = client.get(
            "/ui/evals/compare", params={"a": base.json()["id"], "b": worse["id"], "changed": "1"}
        ).text
        assert "6 of 8 items changed." in compared
        assert compared.count('<tr class="changed">') == 6  # only the changed are shown
        assert "0 / 6 / 2" in compared
        assert client.get("/ui/evals/compare?a=exp-nope&b=").status_code == 404

    outsider = new_key(gateway, "strangers")
    with browser(gateway, outsider) as other:
        assert "exp-" not in other.get("/ui/evals").text
        assert other.get(f"/ui/evals/{worse['id']}").status_code == 404
    stolen = record(
        gateway, outsider, {"run": a_run("x", [1.0], 1), "baseline_id": base.json()["id"]}
    )
    assert stolen.status_code == 404  # another team's run is no baseline of yours


def test_a_bad_run_is_refused_with_the_apis_error(gateway: GatewayProcess) -> None:
    for body, param in (
        ({"run": {"name": "x"}}, "run"),
        ({"run": a_run("x", [1.0], 1), "thresholds": {"f1": "high"}}, "thresholds.f1"),
        ({"run": a_run("x", [1.0], 1), "colour": "red"}, "colour"),
    ):
        answer = record(gateway, MASTER, body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["param"] == param
    broken = a_run("x", [1.0], 1)
    broken["results"][0]["scores"] = {"f1": "great"}
    answer = record(gateway, MASTER, {"run": broken})
    assert answer.status_code == 400
    assert "scores must be numbers" in answer.json()["error"]["message"]
    missing = httpx.get(
        f"{gateway.url}/api/experiments/exp-missing", headers={"authorization": f"Bearer {MASTER}"}
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
