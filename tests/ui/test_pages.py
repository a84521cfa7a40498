"""The console's pages against a real gateway (upstreams faked): login and its cookie, pages
that send strangers to the login page, the playground's chat call (only from the console's
script), traces scoped to the key's team, keys and teams for the master key only, the
dashboard's charts, and the static files."""

from __future__ import annotations

import time

from tests.conftest import GatewayProcess, eventually, team_key
from tests.ui.conftest import MASTER, browser, chat


def test_login_sets_a_strict_cookie_and_strangers_go_to_the_login_page(
    gateway: GatewayProcess,
) -> None:
    with browser(gateway) as client:
        for path in ("/ui/playground", "/ui/traces", "/ui/dashboard", "/ui/keys"):
            answer = client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == f"/ui/login?next={path}"
        assert client.get("/ui").headers["location"] == "/ui/login"
        # The server's root sends a browser to the console, and tells a program where it is.
        home = client.get("/", headers={"accept": "text/html,application/xhtml+xml"})
        assert (home.status_code, home.headers["location"]) == (303, "/ui")
        assert client.get("/").json()["console"] == "/ui"
        login = client.get("/ui/login")
        assert login.status_code == 200
        assert '<label for="key">API key</label>' in login.text
        wrong = client.login("sk-nope")
        assert wrong.status_code == 401
        assert "Incorrect API key provided." in wrong.text
        right = client.login(MASTER, target="https://evil.example/")
        assert right.headers["location"] == "/ui/playground"  # never off the console
        (cookie,) = [c for c in right.headers.get_list("set-cookie") if "stackyard_session=" in c]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Max-Age=43200" in cookie  # a session ends
        assert MASTER not in cookie  # an opaque token, never the key
        page = client.learn(client.get("/ui/playground"))
        assert page.status_code == 200
        assert 'data-input="1.0" data-output="2.0">primary</option>' in page.text
        assert 'data-input="0.0" data-output="0.0">second</option>' in page.text
        assert MASTER not in page.text
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        out = client.post("/ui/logout")
        assert out.headers["location"] == "/ui/login"
        assert client.get("/ui/playground").status_code == 303


def test_the_playground_calls_the_gateway_only_from_the_console(gateway: GatewayProcess) -> None:
    with browser(gateway, MASTER) as client:
        bare = client.post(
            "/ui/api/chat",
            json={"model": "primary", "messages": [{"role": "user", "content": "x"}]},
        )
        assert bare.status_code == 403  # a form on another site cannot add the header
        answer = chat(client, "Hello console")
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"]
        assert float(answer.headers["x-stackyard-cost-usd"]) > 0
        streamed = chat(client, "Stream it", stream=True, stream_options={"include_usage": True})
        assert streamed.headers["content-type"].startswith("text/event-stream")
        assert streamed.text.rstrip().endswith("data: [DONE]")
        bad = chat(client, "x", temperature=7)
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "temperature"
    with browser(gateway) as stranger:
        refused = chat(stranger, "no cookie")
        assert refused.status_code == 401


def test_traces_show_only_the_keys_team_and_open_with_their_waterfall(
    gateway: GatewayProcess,
) -> None:
    red, blue = team_key(gateway, "red", MASTER), team_key(gateway, "blue", MASTER)
    with browser(gateway, red) as as_red, browser(gateway, blue) as as_blue:
        chat(as_red, "red's question")
        chat(as_blue, "blue's question")
        deadline = time.monotonic() + 60
        page = as_red.get("/ui/traces")
        while "<td>primary</td>" not in page.text:
            assert time.monotonic() < deadline, "the trace was not listed"
            time.sleep(0.2)
            page = as_red.get("/ui/traces")
        # Each page links a trace by its trace id; red sees one row, its own.
        assert page.text.count('href="/ui/traces/') == 1
        trace_link = page.text.split('href="/ui/traces/')[1].split('"')[0]
        detail = as_red.get(f"/ui/traces/{trace_link}")
        assert detail.status_code == 200
        assert 'class="span-bar"' in detail.text
        assert "red&#39;s question" in detail.text  # the stored body, escaped
        assert as_blue.get(f"/ui/traces/{trace_link}").status_code == 404
        rated = as_red.post(f"/ui/traces/{trace_link}", data={"value": "0", "comment": "too vague"})
        assert rated.status_code == 303
        scores = as_red.get(f"/ui/traces/{trace_link}").text.split("Scores and feedback")[1]
        assert "<td>feedback</td><td>0.0</td><td>user</td><td>too vague</td>" in scores
        refused = as_blue.post(f"/ui/traces/{trace_link}", data={"value": "1"})
        assert refused.status_code == 404  # not a trace blue may see
        assert as_red.get("/ui/traces?status=bogus").status_code == 200  # the API's message
        assert (
            "status must be ok, error or an HTTP status"
            in as_red.get("/ui/traces?status=bogus").text
        )


def test_keys_and_teams_are_for_the_master_key(gateway: GatewayProcess) -> None:
    member = team_key(gateway, "green", MASTER)
    with browser(gateway, member) as as_member:
        refused = as_member.get("/ui/keys")
        assert refused.status_code == 403
        assert "Keys and teams are for the master key." in refused.text
        assert 'href="/ui/keys"' not in as_member.get("/ui/dashboard").text
        assert as_member.post("/ui/keys", data={"action": "team", "name": "x"}).status_code == 403
    with browser(gateway, MASTER) as admin:
        made = admin.post("/ui/keys", data={"action": "team", "name": "ui-team", "budget_usd": "5"})
        assert made.status_code == 200
        assert "<td>ui-team</td>" in made.text
        key = admin.post("/ui/keys", data={"action": "key", "team": "ui-team", "name": "ui-key"})
        assert 'id="new-key">sk-' in key.text
        new_key = key.text.split('id="new-key">')[1].split("<")[0]
        with browser(gateway, new_key) as as_new:
            assert as_new.get("/ui/playground").status_code == 200
        duplicate = admin.post("/ui/keys", data={"action": "team", "name": "ui-team"})
        assert duplicate.status_code == 400
        assert 'class="error"' in duplicate.text
        # Limits change in place: a team's budget and rate, a key's models (blank clears).
        team = admin.post(
            "/ui/keys",
            data={"action": "update-team", "team": "ui-team", "rpm": "60", "budget_usd": ""},
        )
        assert "Limits saved for ui-team." in team.text
        row = team.text.split("<td>ui-team</td>")[1].split("</tr>")[0]
        assert "<td>60</td>" in row
        assert "$" not in row.split("<td>")[4]  # the budget was cleared
        key_row = key.text.split("<td>ui-key</td>")[1].split("</tr>")[0]
        key_id = key_row.split('name="id" value="')[1].split('"')[0]
        limited = admin.post(
            "/ui/keys",
            data={"action": "update-key", "id": key_id, "models": "second", "rpm": ""},
        )
        assert "Limits saved for ui-key." in limited.text
        with browser(gateway, new_key) as as_new:
            deadline = time.monotonic() + 60
            while ">primary</option>" in as_new.get("/ui/playground").text:
                assert time.monotonic() < deadline, "the key may still use 'primary'"
                time.sleep(0.1)
            assert ">second</option>" in as_new.get("/ui/playground").text
        bad = admin.post("/ui/keys", data={"action": "update-key", "id": key_id, "rpm": "lots"})
        assert bad.status_code == 400
        assert "Requests a minute must be a whole number" in bad.text


def test_the_dashboard_draws_its_charts_by_group_with_budgets(gateway: GatewayProcess) -> None:
    member = team_key(gateway, "budgeted", MASTER)
    with browser(gateway, MASTER) as client:
        assert (
            client.post(
                "/ui/keys", data={"action": "update-team", "team": "budgeted", "budget_usd": "1"}
            ).status_code
            == 200
        )
        with browser(gateway, member) as as_member:
            assert chat(as_member, "count me").status_code == 200
        # The trace writer writes in the background.
        assert eventually(
            lambda: "<tr><td>budgeted</td>" in client.get("/ui/dashboard?window=1h&by=team").text
        )
        page = client.get("/ui/dashboard?window=1h")
        assert page.status_code == 200
        assert page.text.count('<svg class="chart"') == 10
        assert "<title>Requests by model</title>" in page.text
        assert "<title>Saved by the cache</title>" in page.text  # by tier, over time
        assert "<title>Saved by model</title>" in page.text
        assert "<polyline" in page.text
        by_team = client.get("/ui/dashboard?window=1h&by=team").text
        assert "<title>Requests by team</title>" in by_team
        assert "<tr><td>budgeted</td>" in by_team  # the team's name, not its id
        deadline = time.monotonic() + 60
        while True:  # the spend log is written in batches too
            budgets = client.get("/ui/dashboard").text.split('<table id="budgets">')[1]
            row = budgets.split("team <strong>budgeted</strong>")[1].split("</tr>")[0]
            if "$0<" not in row or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "$1 a month" in row
        assert '<meter min="0" max="1"' in row
        assert "$0<" not in row  # the chat's cost is counted against the budget
    with browser(gateway, member) as as_member:
        assert 'id="budgets"' not in as_member.get("/ui/dashboard").text  # the master's view


def test_static_files_and_nothing_else(gateway: GatewayProcess) -> None:
    with browser(gateway) as client:
        css = client.get("/ui/static/console.css")
        assert css.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        script = client.get("/ui/static/playground.js")
        assert script.headers["content-type"].startswith("text/javascript")
        for path in ("/ui/static/../pages.py", "/ui/static/pages.py", "/ui/static/nope.css"):
            assert client.get(path).status_code == 404


def test_prompts_push_compare_label_roll_back_and_audit(gateway: GatewayProcess) -> None:
    with browser(gateway, MASTER) as client:
        first = client.post(
            "/ui/prompts",
            data={"name": "greeter", "template": "Hello {{ name }}!", "message": "first"},
        )
        assert first.status_code == 303
        assert first.headers["location"] == "/ui/prompts/greeter?version=1"
        client.post(
            "/ui/prompts",
            data={"name": "greeter", "template": "Hi there, {{ name }}.", "message": "warmer"},
        )
        listing = client.get("/ui/prompts")
        assert '<a href="/ui/prompts/greeter">greeter</a>' in listing.text
        page = client.get("/ui/prompts/greeter?version=1")
        assert '<pre class="body" id="version-content">Hello {{ name }}!</pre>' in page.text
        assert "<code>name</code>" in page.text
        diff = client.get("/ui/prompts/greeter?from=1&to=2")
        assert '<span class="del">-Hello {{ name }}!</span>' in diff.text
        assert '<span class="add">+Hi there, {{ name }}.</span>' in diff.text

        for version in ("1", "2"):
            moved = client.post(
                "/ui/prompts/greeter",
                data={"action": "label", "label": "production", "version": version},
            )
            assert moved.status_code == 303
        assert "production → v2" in client.get("/ui/prompts").text
        client.post("/ui/prompts/greeter", data={"action": "rollback", "label": "production"})
        assert "production → v1" in client.get("/ui/prompts").text
        audit = client.get("/ui/prompts/greeter").text.split("<h2>Audit log</h2>")[1]
        assert audit.count("<td>master</td>") == 5  # two pushes, two moves, a rollback
        bad = client.post(
            "/ui/prompts/greeter", data={"action": "label", "label": "production", "version": "9"}
        )
        assert bad.status_code == 400
        assert 'class="error"' in bad.text
        refused = client.post("/ui/prompts", data={"name": "bad name!", "template": "x"})
        assert refused.status_code == 400
        assert "name: letters, digits" in refused.text
        assert client.get("/ui/prompts/missing").status_code == 404
