"""The playground's registry calls: a prompt version by label or number for its form, and a
push of what was typed as a new version; both only from the console's script, as the
logged-in key."""

from __future__ import annotations

from tests.conftest import GatewayProcess
from tests.ui.conftest import MASTER, browser

UI = {"x-stackyard-ui": "1"}


def test_a_prompt_version_for_the_form_and_a_push_from_the_playground(
    gateway: GatewayProcess,
) -> None:
    with browser(gateway, MASTER) as client:
        first = {
            "name": "pg-greeter",
            "messages": [{"role": "user", "content": "Hello {{who}}"}],
            "config": {"model": "primary", "temperature": 0.2},
            "message": "from the playground",
        }
        assert client.post("/ui/api/prompts", json=first).status_code == 403  # no header
        pushed = client.post("/ui/api/prompts", json=first, headers=UI)
        assert pushed.status_code == 200, pushed.text
        assert (pushed.json()["version"], pushed.json()["created"]) == (1, True)
        again = client.post("/ui/api/prompts", json=first, headers=UI).json()
        assert again["created"] is False  # the same content is the same version
        second = {**first, "messages": [{"role": "user", "content": "Hi {{who}} from {{town}}"}]}
        client.post("/ui/api/prompts", json={**second, "labels": ["production"]}, headers=UI)

        by_label = client.get(
            "/ui/api/prompt", params={"name": "pg-greeter", "ref": "production"}, headers=UI
        )
        assert by_label.status_code == 200
        assert by_label.json()["version"] == 2
        assert sorted(by_label.json()["variables"]) == ["town", "who"]
        by_number = client.get(
            "/ui/api/prompt", params={"name": "pg-greeter", "ref": "1"}, headers=UI
        ).json()
        assert by_number["config"] == {"model": "primary", "temperature": 0.2}
        latest = client.get("/ui/api/prompt", params={"name": "pg-greeter"}, headers=UI).json()
        assert latest["version"] == 2

        missing = client.get(
            "/ui/api/prompt", params={"name": "pg-greeter", "ref": "staging"}, headers=UI
        )
        assert missing.status_code == 404
        assert "no label 'staging'" in missing.json()["error"]["message"]
        invalid = client.post("/ui/api/prompts", json={"name": "bad name!"}, headers=UI)
        assert invalid.status_code == 400
        assert invalid.json()["error"]["code"] == "invalid_prompt"

        page = client.get("/ui/playground?prompt=pg-greeter&model=second").text
        assert 'data-labels="production" selected>pg-greeter</option>' in page
        assert 'data-output="0.0" selected>second</option>' in page
    with browser(gateway) as stranger:
        refused = stranger.get("/ui/api/prompt", params={"name": "pg-greeter"}, headers=UI)
        assert refused.status_code == 401
