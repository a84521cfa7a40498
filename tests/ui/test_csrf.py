"""The console against cross-site requests: a form needs its session's anti-forgery token and
this server's origin (once, a form on another site created a team with the master key's
cookie), a login needs the token of the login page it came from (no login CSRF), the cookie
holds an opaque session id (never the key), and a session ends with its key."""

from __future__ import annotations

import httpx

from tests.conftest import GatewayProcess, team_key
from tests.ui.conftest import MASTER, browser


def teams(gateway: GatewayProcess) -> set[str]:
    listed = httpx.get(
        f"{gateway.url}/admin/teams", headers={"authorization": f"Bearer {MASTER}"}
    ).json()
    return {t["name"] for t in listed["data"]}


def test_a_form_needs_its_token_and_this_origin(gateway: GatewayProcess) -> None:
    with browser(gateway, MASTER) as admin:
        token = admin.csrf
        assert token is not None
        own = gateway.url
        # A form on another site: no token (it cannot read one), or this origin's token with
        # the other site's Origin.
        forged: list[tuple[dict[str, str], dict[str, str]]] = [
            ({"action": "team", "name": "forged-1"}, {}),
            ({"action": "team", "name": "forged-2", "csrf": "guessed"}, {}),
            (
                {"action": "team", "name": "forged-3", "csrf": token},
                {"origin": "https://evil.example"},
            ),
            (
                {"action": "team", "name": "forged-4", "csrf": token},
                {"origin": "http://127.0.0.1:1"},
            ),
            (
                {"action": "team", "name": "forged-5", "csrf": token},
                {"referer": "https://evil.example/page"},
            ),
        ]
        for data, headers in forged:
            refused = httpx.Client.post(admin, "/ui/keys", data=data, headers=headers)
            assert refused.status_code == 403, data
        assert not {f"forged-{i}" for i in range(1, 6)} & teams(gateway)
        made = admin.post(
            "/ui/keys",
            data={"action": "team", "name": "csrf-ok", "csrf": token},
            headers={"origin": own},
        )
        assert made.status_code == 200, made.text
        assert "csrf-ok" in teams(gateway)
        # A forged logout is ignored too.
        httpx.Client.post(admin, "/ui/logout", data={"csrf": "guessed"})
        assert admin.get("/ui/keys").status_code == 200


def test_a_login_needs_the_token_of_its_own_login_page(gateway: GatewayProcess) -> None:
    key = team_key(gateway, "csrf-login", MASTER)
    with browser(gateway) as victim:
        # Another site posts its own key into the victim's browser: no session.
        forged = victim.post("/ui/login", data={"key": key, "next": "/ui/traces"})
        assert forged.status_code == 401
        assert "came from another site" in forged.text
        assert "stackyard_session" not in forged.headers.get("set-cookie", "")
        victim.get("/ui/login")
        token = victim.cookies.get("stackyard_login")
        assert token
        cross = victim.post(
            "/ui/login",
            data={"key": key, "csrf": token},
            headers={"origin": "https://evil.example"},
        )
        assert cross.status_code == 401
        assert victim.get("/ui/traces").status_code == 303  # not logged in


def test_the_cookie_is_a_session_that_ends_with_its_key(gateway: GatewayProcess) -> None:
    key = team_key(gateway, "csrf-session", MASTER)
    with browser(gateway, key) as member:
        session = member.cookies.get("stackyard_session")
        assert session
        assert key not in session
        assert member.get("/ui/traces").status_code == 200
        key_id = next(
            k["id"]
            for k in httpx.get(
                f"{gateway.url}/admin/keys", headers={"authorization": f"Bearer {MASTER}"}
            ).json()["data"]
            if k["prefix"] and key.startswith(k["prefix"])
        )
        revoked = httpx.post(
            f"{gateway.url}/admin/keys/revoke",
            json={"id": key_id},
            headers={"authorization": f"Bearer {MASTER}"},
        )
        assert revoked.status_code == 200
        gone = member.get("/ui/traces")
        assert (gone.status_code, gone.headers["location"]) == (303, "/ui/login?expired=1")
