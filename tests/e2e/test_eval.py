"""``stackyard eval run`` against a real gateway: a prompt version that regresses fails the
gate against the one behind ``production``; an unchanged one passes; reports are written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from stackyard.cli import main
from tests.conftest import GatewayProcess, eventually
from tests.fakes.openai_upstream import FakeOpenAI
from tests.ui.conftest import Browser

pytestmark = pytest.mark.e2e

MASTER = "sk-master-eval-0123456789"
CITIES = ["Paris", "Rome", "Lima", "Oslo", "Cairo", "Quito", "Hanoi", "Dakar", "Bern", "Riga"]


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "echo",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("eval-echo"),
                    "input_cost_per_mtok": 1.0,
                }
            ],
            "auth": {"master_key": MASTER},
        }
    )
    headers = {"authorization": f"Bearer {MASTER}"}
    for template, labels in (("The answer is {{city}}.", ["production"]), ("No idea.", [])):
        pushed = httpx.post(
            f"{gw.url}/api/prompts",
            json={
                "name": "capital",
                "template": template,
                "variables": {"city": {"type": "string"}},
                "config": {"model": "echo"},
                "labels": labels,
            },
            headers=headers,
        )
        assert pushed.status_code == 200, pushed.text
    return gw


def write_eval(tmp_path: Path, gateway: GatewayProcess, **overrides: Any) -> Path:
    data = tmp_path / "capitals.jsonl"
    data.write_text(
        "".join(json.dumps({"input": {"city": c}, "expected": c}) + "\n" for c in CITIES)
    )
    config = {
        "name": "capitals",
        "gateway": gateway.url,
        "dataset": "capitals.jsonl",
        "prompt": {"name": "capital", "version": 1},
        "scorers": [
            {"type": "contains", "threshold": 0.9},
            {"type": "regex", "pattern": r"\.$"},
        ],
        "baseline": {"prompt": {"name": "capital", "label": "production"}},
        "concurrency": 4,
        **overrides,
    }
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(path: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["eval", "run", str(path), "--api-key", MASTER])
    return result.exit_code, result.output


def test_an_unchanged_prompt_passes_and_writes_reports(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    code, output = run(write_eval(tmp_path, gateway))
    assert code == 0, output
    assert "PASSED" in output
    saved = json.loads((tmp_path / "eval-reports" / "latest-run.json").read_text())
    assert len(saved["results"]) == 10
    first = saved["results"][0]
    assert first["prompt_version"] == "capital@1"
    assert first["input_tokens"] > 0
    assert first["cost_usd"] > 0
    assert first["scores"] == {"contains": 1.0, "regex": 1.0}
    assert (
        "| contains | 1.000 | 0.900 | 1.000 | +0.000 |"
        in (tmp_path / "eval-reports" / "report.md").read_text()
    )
    assert "<svg" in (tmp_path / "eval-reports" / "report.html").read_text()


def test_a_regression_against_production_fails_the_gate(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    path = write_eval(
        tmp_path, gateway, prompt={"name": "capital", "version": 2}, scorers=[{"type": "contains"}]
    )
    code, output = run(path)
    assert code == 1, output
    assert "FAIL (significant drop)" in output
    # Both runs are kept on the gateway: the console compares them and shows the verdict
    # where the prompt's labels are moved.
    run_id = output.split("recorded as ")[1].split(":")[0]
    headers = {"authorization": f"Bearer {MASTER}"}
    kept = httpx.get(f"{gateway.url}/api/experiments/{run_id}", headers=headers).json()
    assert (kept["passed"], kept["prompt"], kept["prompt_version"]) == (False, "capital", 2)
    assert kept["summary"]["scores"] == {"contains": 0.0}
    assert kept["summary"]["checks"][0]["p_value"] < 0.05
    baseline = httpx.get(
        f"{gateway.url}/api/experiments/{kept['baseline_id']}", headers=headers
    ).json()
    assert (baseline["passed"], baseline["prompt_version"]) == (None, 1)
    with Browser(base_url=gateway.url, timeout=30) as console:
        assert console.login(MASTER).status_code == 303
        compared = console.get(f"/ui/evals/compare?a={baseline['id']}&b={run_id}").text
        aggregate = compared.split('<table id="aggregate">')[1].split("</table>")[0]
        assert '<td class="num bad">-1.000</td>' in aggregate
        assert "0 / 10 / 0" in aggregate  # every item went down
        assert "10 of 10 items changed." in compared
        assert compared.count('<tr class="changed">') == 10
        assert "No idea.</pre>" in compared  # B's answers, beside A's
        prompt = console.get("/ui/prompts/capital").text
        assert '<option value="2">v2 (evaluation FAILED)</option>' in prompt


def test_a_saved_run_as_the_baseline_and_a_threshold_failure(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    code, _ = run(write_eval(tmp_path, gateway))
    assert code == 0
    saved = tmp_path / "eval-reports" / "latest-run.json"
    baseline = tmp_path / "baseline.json"
    baseline.write_text(saved.read_text())
    path = write_eval(
        tmp_path,
        gateway,
        prompt={"name": "capital", "version": 2},
        baseline={"run": "baseline.json"},
        scorers=[{"type": "contains", "threshold": 0.5}],
    )
    code, output = run(path)
    assert code == 1
    assert "FAIL (below threshold)" in output


def test_an_unusable_evaluation_exits_2(gateway: GatewayProcess, tmp_path: Path) -> None:
    code, output = run(write_eval(tmp_path, gateway, scorers=[{"type": "psychic"}]))
    assert code == 2
    assert "unknown scorer 'psychic'" in output
    code, output = run(write_eval(tmp_path, gateway, prompt={"name": "missing"}, baseline=None))
    assert code == 2
    assert "every request failed" in output


def test_promote_releases_a_passing_version_and_not_a_failing_one(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    headers = {"authorization": f"Bearer {MASTER}"}

    def staging() -> int | None:
        found = httpx.get(f"{gateway.url}/api/prompts/capital/labels/staging", headers=headers)
        return found.json()["version"] if found.status_code == 200 else None

    failing = write_eval(
        tmp_path, gateway, prompt={"name": "capital", "version": 2}, scorers=[{"type": "contains"}]
    )
    result = CliRunner().invoke(
        main, ["eval", "run", str(failing), "--api-key", MASTER, "--promote", "staging"]
    )
    assert result.exit_code == 1
    assert "not promoted" in result.output
    assert staging() is None
    passing = write_eval(tmp_path, gateway, prompt={"name": "capital", "version": 1})
    result = CliRunner().invoke(
        main, ["eval", "run", str(passing), "--api-key", MASTER, "--promote", "staging"]
    )
    assert result.exit_code == 0, result.output
    assert "promoted capital@1 to staging" in result.output
    assert staging() == 1


def test_compare_two_saved_runs(gateway: GatewayProcess, tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.mkdir()
    assert run(write_eval(good, gateway, baseline=None))[0] == 0
    worse = write_eval(bad, gateway, prompt={"name": "capital", "version": 2}, baseline=None)
    assert run(worse)[0] == 1  # below the contains threshold
    before = good / "eval-reports" / "latest-run.json"
    after = bad / "eval-reports" / "latest-run.json"
    result = CliRunner().invoke(
        main, ["eval", "compare", str(before), str(after), "--out", str(tmp_path / "cmp")]
    )
    assert result.exit_code == 1, result.output
    assert "contains: 10 items changed" in result.output
    assert "FAILED: a significant drop" in result.output
    assert (tmp_path / "cmp" / "compare.html").exists()
    same = CliRunner().invoke(main, ["eval", "compare", str(before), str(before)])
    assert same.exit_code == 0
    assert "no significant drop" in same.output


def test_a_dataset_from_traces_replays_as_an_evaluation(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    assert run(write_eval(tmp_path, gateway, baseline=None))[0] == 0  # traffic to learn from
    out = tmp_path / "from-traces.jsonl"
    items: list[dict[str, Any]] = []

    def every_trace_written() -> bool:  # the traces are written in the background
        result = CliRunner().invoke(
            main,
            [
                "eval",
                "dataset",
                "from-traces",
                str(out),
                "--prompt",
                "capital",
                "--version",
                "1",
                "--config",
                str(gateway.config_path),
            ],
        )
        if "no stored traces with bodies match" in result.output:
            return False  # not written yet
        assert result.exit_code == 0, result.output
        items[:] = [json.loads(line) for line in out.read_text().splitlines()]
        return len(items) >= len(CITIES)

    assert eventually(every_trace_written, every=0.5)
    assert {i["input"]["city"] for i in items} == set(CITIES)  # each input once
    first = items[0]
    assert first["expected"] == f"[eval-echo] echo: The answer is {first['input']['city']}."
    assert first["metadata"]["prompt_version"] == 1
    replay = write_eval(
        tmp_path, gateway, dataset=str(out), baseline=None, scorers=[{"type": "exact_match"}]
    )
    code, output = run(replay)
    assert code == 0, output
