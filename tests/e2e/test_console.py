"""The console in a real browser (Debian's chromium, driven by Playwright) against a real
``stackyard serve`` with the in-process model: log in, chat in the playground and watch the
answer stream, compare two models, push and label a prompt, open the trace of that chat, see
the dashboard's charts, and be refused a page the key may not see. A screenshot of each page
is written to ``$STACKYARD_SCREENSHOTS`` (CI keeps them), else to the test's temporary
folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stackyard.finetune.jobs import now
from tests.conftest import GatewayProcess, require_local_models, team_key, unavailable
from tests.fakes.openai_upstream import FakeOpenAI
from tests.ui.conftest import a_job, metrics

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MASTER = "sk-master-browser-0123456789"
CHROMIUM = "/usr/bin/chromium"


def require_browser() -> None:
    """Skip without Playwright or chromium; under CI that is a failure."""
    missing = []
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("the playwright package")
    if not shutil.which(CHROMIUM):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if missing:
        unavailable(f"the browser tests need {' and '.join(missing)}")


@pytest.fixture(scope="module")
def gateway(
    fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path_factory: pytest.TempPathFactory
) -> GatewayProcess:
    require_local_models()
    require_browser()
    folder = tmp_path_factory.mktemp("browser")
    config = {
        "models": [
            {"name": "smollm2", "provider": "local", "model": "smollm2"},
            {"name": "all-minilm-l6-v2", "provider": "local", "model": "all-minilm-l6-v2"},
            {
                "name": "hosted",
                "provider": "openai-compatible",
                "model": "fake-large",
                "api_base": fake_openai.base_url("browser-hosted"),
                "input_cost_per_mtok": 1.0,
                "output_cost_per_mtok": 2.0,
            },
        ],
        "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
        "database_url": f"sqlite:///{folder / 'browser.db'}",
        # The fine-tuning job of the live page is written by the test, as a worker would.
        "finetune": {"max_workers": 0, "data_dir": str(folder / "jobs")},
    }
    gw: GatewayProcess = gateway_factory(config, ready_timeout=240)
    return gw


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("STACKYARD_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(gateway: GatewayProcess) -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # the in-process model answers in seconds on 2 cores
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox"]
        )
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        context.set_default_timeout(60_000)
        yield context.new_page()
        browser.close()


def send(page: Any, columns: int) -> Any:
    """Press Send in the playground; the answer cards, once every one has finished."""
    from playwright.sync_api import expect

    page.get_by_role("button", name="Send").click()
    cards = page.locator(".answer")
    expect(cards).to_have_count(columns)
    for index in range(columns):
        expect(cards.nth(index)).to_have_attribute("data-done", "true")
    return cards


def log_in(page: Any, gateway: GatewayProcess, key: str) -> None:
    page.goto(f"{gateway.url}/ui")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/playground")


def test_chat_compare_trace_and_dashboard(page: Any, gateway: GatewayProcess, shots: Path) -> None:
    from playwright.sync_api import expect

    page.goto(f"{gateway.url}/ui/dashboard")
    page.wait_for_url("**/ui/login**")  # strangers log in first
    page.screenshot(path=str(shots / "login.png"))
    log_in(page, gateway, MASTER)

    # Chat with the in-process model: the answer streams into the page.
    page.get_by_label("Model", exact=True).select_option("smollm2")
    page.get_by_label("Max tokens").fill("24")
    page.get_by_label("Temperature").fill("0")
    page.get_by_label("Message").fill("Say hello to the console.")
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".answer").first
    expect(answer).to_have_attribute("data-done", "true")
    expect(answer.locator(".answer-model")).to_have_text("smollm2")
    assert answer.locator(".answer-text").inner_text().strip()
    expect(answer.locator(".answer-meta")).to_contain_text("tokens")
    page.screenshot(path=str(shots / "playground.png"))

    # Compare two models on the same input.
    page.get_by_role("button", name="Compare with another model").click()
    page.get_by_label("Model 2").select_option("hosted")
    cards = send(page, 2)
    expect(cards.nth(1).locator(".answer-model")).to_have_text("hosted")
    # 5 + 7 tokens at $1 and $2 a million, estimated from the list price for a stream.
    expect(cards.nth(1).locator(".answer-meta")).to_contain_text("≈ $0.000019")
    assert cards.nth(1).locator(".answer-text").inner_text().strip()
    page.screenshot(path=str(shots / "compare.png"))

    # Push a prompt, then label it.
    page.get_by_role("link", name="Prompts").click()
    page.get_by_label("Name").fill("welcome")
    page.get_by_label("Template").fill("Welcome, {{ name }}, to {{ place }}.")
    page.get_by_label("What changed").fill("first words")
    page.get_by_role("button", name="Push").click()
    page.wait_for_url("**/ui/prompts/welcome?version=1")
    expect(page.locator("#version-content")).to_have_text("Welcome, {{ name }}, to {{ place }}.")
    page.get_by_label("Label", exact=True).fill("production")
    page.get_by_role("button", name="Move label").click()
    page.wait_for_url("**/ui/prompts/welcome")
    expect(page.get_by_role("cell", name="production", exact=True).first).to_be_visible()
    expect(page.get_by_role("button", name="Roll back production")).to_be_visible()
    page.screenshot(path=str(shots / "prompt.png"), full_page=True)

    # The trace of that chat, with its spans.
    page.get_by_role("link", name="Traces").click()
    rows = page.locator("table.traces tbody tr")
    for _ in range(20):  # written within a second of the answer
        if rows.count() >= 3:
            break
        page.wait_for_timeout(300)
        page.reload()
    expect(rows).to_have_count(3)
    expect(page.locator("table.traces")).to_contain_text("smollm2")
    page.screenshot(path=str(shots / "traces.png"))
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Spans")).to_be_visible()
    expect(page.locator(".span-bar").first).to_be_visible()
    page.screenshot(path=str(shots / "trace.png"), full_page=True)

    # The dashboard's charts render.
    page.get_by_role("link", name="Dashboard").click()
    charts = page.locator("svg.chart")
    expect(charts).to_have_count(10)
    expect(page.get_by_role("img", name="Latency (ms)")).to_be_visible()
    expect(page.locator("svg.chart circle").first).to_be_visible()  # a point per value
    assert page.locator(".totals dd").first.inner_text() == "3"
    page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

    page.get_by_role("link", name="Keys and teams").click()
    expect(page.get_by_role("heading", name="Keys and teams")).to_be_visible()
    page.screenshot(path=str(shots / "keys.png"), full_page=True)


def test_a_registry_prompt_in_the_playground(
    page: Any, gateway: GatewayProcess, shots: Path
) -> None:
    from playwright.sync_api import expect

    headers = {"authorization": f"Bearer {MASTER}"}
    for template, labels in (
        ("Welcome, {{ name }}, to {{ place }}.", ["production"]),
        ("Hi {{ name }}! Enjoy {{ place }}.", []),
    ):
        pushed = httpx.post(
            f"{gateway.url}/api/prompts",
            json={"name": "tour", "template": template, "labels": labels},
            headers=headers,
        )
        assert pushed.status_code == 200, pushed.text
    log_in(page, gateway, MASTER)

    # Choose the prompt: its production version's variables become a form.
    page.get_by_label("Prompt", exact=True).select_option("tour")
    expect(page.locator("#prompt-status")).to_have_text("tour v1 (production)")
    page.get_by_label("name", exact=True).fill("Ada")
    page.get_by_label("place", exact=True).fill("Paris")
    expect(page.locator("#prompt-preview")).to_have_text("Welcome, {{ name }}, to {{ place }}.")

    # Compare the production version with version 2, on the same model and variables.
    page.get_by_label("Model", exact=True).select_option("hosted")
    page.get_by_role("button", name="Compare with another model or version").click()
    page.get_by_label("Model 2").select_option("hosted")
    page.locator("#ref-1").fill("2")
    cards = send(page, 2)
    expect(cards.nth(0).locator(".answer-model")).to_have_text("hosted · tour production")
    expect(cards.nth(1).locator(".answer-model")).to_have_text("hosted · tour v2")
    expect(cards.nth(0).locator(".answer-text")).to_contain_text("Welcome, Ada, to Paris.")
    expect(cards.nth(1).locator(".answer-text")).to_contain_text("Hi Ada! Enjoy Paris.")
    page.screenshot(path=str(shots / "playground-prompts.png"), full_page=True)

    # Save what was typed as a new prompt version, and find it in the registry.
    page.get_by_label("Prompt", exact=True).select_option("")
    page.get_by_label("System").fill("You are terse.")
    page.get_by_label("Message").fill("Greet {{who}}.")
    page.get_by_text("Save as a new prompt version").click()
    page.get_by_label("Prompt name").fill("terse-greeter")
    page.get_by_role("button", name="Save version").click()
    expect(page.locator("#save-status")).to_have_text("Saved as terse-greeter v1.")
    page.get_by_role("link", name="terse-greeter v1").click()
    page.wait_for_url("**/ui/prompts/terse-greeter?version=1")
    expect(page.locator("#version-content")).to_contain_text("Greet {{who}}.")
    expect(page.locator("#version-config")).to_contain_text("model=hosted")


def test_rag_evaluation_and_fine_tuning_pages(
    page: Any, gateway: GatewayProcess, shots: Path
) -> None:
    from playwright.sync_api import expect

    log_in(page, gateway, MASTER)

    # A collection: create it, add two documents, search it (embedded in process).
    page.get_by_role("link", name="RAG").click()
    page.get_by_label("Name").fill("notes")
    page.get_by_label("Description").fill("Team notes")
    page.get_by_role("button", name="Create collection").click()
    page.wait_for_url("**/ui/rag/notes")
    for doc_id, text in (
        ("lunch", "Lunch is served at noon in the canteen on the second floor."),
        ("parking", "Visitors park in the north car park and sign in at reception."),
    ):
        page.get_by_label("Document id").fill(doc_id)
        page.get_by_label("Text").fill(text)
        page.get_by_role("button", name="Add document").click()
        expect(page.get_by_role("status")).to_have_text(f"Document '{doc_id}' written.")
    page.get_by_label("Query").fill("where do I eat at midday?")
    page.get_by_role("button", name="Search").click()
    results = page.locator("#results li")
    expect(results).to_have_count(2)
    expect(results.first).to_contain_text("canteen")  # the closer passage first
    expect(results.first).to_contain_text("dense rank 1")
    page.screenshot(path=str(shots / "rag.png"), full_page=True)

    # Two evaluation runs, recorded as 'stackyard eval run' records them, compared.
    headers = {"authorization": f"Bearer {MASTER}"}
    ids: list[str] = []
    for version, scores in ((1, [1.0, 1.0, 0.5]), (2, [1.0, 0.0, 1.0])):
        run = {
            "name": "tour-eval",
            "target": f"tour@{version} on hosted",
            "started_at": 0.0,
            "seconds": 1.0,
            "results": [
                {
                    "item_id": f"q{i}",
                    "output": f"answer {i} of v{version}",
                    "scores": {"contains": score},
                    "reasons": {},
                    "latency_ms": 12.0,
                    "prompt_version": f"tour@{version}",
                }
                for i, score in enumerate(scores)
            ],
        }
        body: dict[str, Any] = {"run": run, "thresholds": {"contains": 0.5}}
        if ids:
            body["baseline_id"] = ids[0]
        recorded = httpx.post(f"{gateway.url}/api/experiments", json=body, headers=headers)
        assert recorded.status_code == 200, recorded.text
        ids.append(recorded.json()["id"])
    page.get_by_role("link", name="Evaluations").click()
    expect(page.locator("#pick tbody tr")).to_have_count(2)
    page.screenshot(path=str(shots / "evals.png"), full_page=True)
    page.get_by_role("button", name="Compare A with B").click()
    page.wait_for_url("**/ui/evals/compare?**")
    expect(page.locator("#aggregate")).to_contain_text("1 / 1 / 1")
    expect(page.locator("#items tr.changed")).to_have_count(2)
    page.screenshot(path=str(shots / "evals-compare.png"), full_page=True)

    page.get_by_role("link", name="Fine-tuning").click()
    expect(page.get_by_role("heading", name="Fine-tuning jobs")).to_be_visible()
    page.screenshot(path=str(shots / "finetune.png"))


def test_a_running_jobs_loss_curve_grows_without_a_reload(
    page: Any, gateway: GatewayProcess, shots: Path
) -> None:
    from playwright.sync_api import expect

    jobs, job_id = a_job(gateway, None)
    jobs.beat(job_id, status="running")

    def step(n: int) -> None:
        jobs.event(job_id, "info", f"Step {n}/6", metrics(n, 3.0 - 0.4 * n, total=6))

    for n in (1, 2, 3):
        step(n)
    log_in(page, gateway, MASTER)
    page.goto(f"{gateway.url}/ui/finetune/{job_id}")
    curve = page.get_by_role("img", name="Training loss by step")
    expect(curve.locator("circle")).to_have_count(3)
    for n in (4, 5, 6):
        step(n)
    expect(curve.locator("circle")).to_have_count(6)  # refreshed in place, every 5 seconds
    expect(page.locator("#job-status")).to_have_text("running")
    page.screenshot(path=str(shots / "finetune-job.png"), full_page=True)
    jobs.release(
        job_id, status="succeeded", fine_tuned_model="ft:smollm2:live:x", finished_at=now()
    )
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#job-live")).not_to_have_attribute("data-refresh", "5")


def test_a_team_key_is_refused_the_admin_pages(
    page: Any, gateway: GatewayProcess, shots: Path
) -> None:
    from playwright.sync_api import expect

    log_in(page, gateway, team_key(gateway, "browsers", MASTER))
    expect(page.get_by_role("link", name="Keys and teams")).to_have_count(0)
    page.goto(f"{gateway.url}/ui/keys")
    expect(page.get_by_role("alert")).to_have_text("Keys and teams are for the master key.")
    page.screenshot(path=str(shots / "refused.png"))
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/ui/login")
