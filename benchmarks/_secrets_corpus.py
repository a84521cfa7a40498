"""The secrets benchmark's texts: planted secrets in the formats providers document, inside
the places people paste them (prose, .env files, code, JSON, shell commands), and look-alikes
that are not secrets (hashes, UUIDs, base64 data, placeholders, URLs with a user and no
password). Generated with a fixed seed; the formats come from the providers' documentation,
not from Stackyard's patterns.
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable

ALNUM = string.ascii_letters + string.digits
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"


def _pick(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    claims: dict[str, object] = {"sub": str(rng.randrange(10**9))}
    claims["name"] = _pick(rng, string.ascii_letters, 8)
    claims["iat"] = rng.randrange(1_500_000_000, 1_800_000_000)
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{_b64url(rng.randbytes(32))}"


def _pem(rng: random.Random) -> str:
    kind = rng.choice(["RSA ", "EC ", "OPENSSH ", ""])
    body = "\n".join(
        base64.b64encode(rng.randbytes(48)).decode() for _ in range(rng.randrange(3, 8))
    )
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n-----END {kind}PRIVATE KEY-----"


def _password(rng: random.Random) -> str:
    return _pick(rng, ALNUM + "!*-_.~", rng.randrange(8, 24))


def _connection(rng: random.Random) -> str:
    scheme = rng.choice(["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp"])
    user = rng.choice(["app", "admin", "svc_orders", "root", "deploy"])
    host = rng.choice(["db.internal", "10.0.3.7", "cluster0.ab1cd.mongodb.net", "cache:6379"])
    return f"{scheme}://{user}:{_password(rng)}@{host}/{rng.choice(['prod', 'app', '0'])}"


def _key(*parts: str | tuple[str, int]) -> Callable[[random.Random], str]:
    """A generator of keys made of literal parts and (alphabet, length) random parts."""

    def make(rng: random.Random) -> str:
        return "".join(p if isinstance(p, str) else _pick(rng, *p) for p in parts)

    return make


def _slack_token(rng: random.Random) -> str:
    return f"xoxb-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**12, 10**13)}-" + _pick(
        rng, ALNUM, 24
    )


UPPER_DIGITS = string.ascii_uppercase + string.digits
#: name: (generator, the name that goes with it, e.g. an environment variable)
FORMATS: dict[str, tuple[Callable[[random.Random], str], str]] = {
    "openai_project_key": (_key("sk-proj-", (URLSAFE, 120)), "OPENAI_API_KEY"),
    "openai_legacy_key": (_key("sk-", (ALNUM, 48)), "OPENAI_API_KEY"),
    "anthropic_key": (_key("sk-ant-api03-", (URLSAFE, 93), "AA"), "ANTHROPIC_API_KEY"),
    "aws_access_key_id": (
        _key("AKIA", (string.ascii_uppercase + "234567", 16)),
        "AWS_ACCESS_KEY_ID",
    ),
    "aws_secret_access_key": (_key((B64, 40)), "aws_secret_access_key"),
    "github_classic_token": (_key("ghp_", (ALNUM, 36)), "GITHUB_TOKEN"),
    "github_fine_grained": (_key("github_pat_", (ALNUM, 22), "_", (ALNUM, 59)), "GITHUB_TOKEN"),
    "gitlab_token": (_key("glpat-", (URLSAFE, 20)), "GITLAB_TOKEN"),
    "slack_bot_token": (_slack_token, "SLACK_BOT_TOKEN"),
    "slack_webhook": (
        _key(
            "https://hooks.slack.com/services/T",
            (UPPER_DIGITS, 8),
            "/B",
            (UPPER_DIGITS, 8),
            "/",
            (ALNUM, 24),
        ),
        "SLACK_WEBHOOK_URL",
    ),
    "google_api_key": (_key("AIza", (URLSAFE, 35)), "GOOGLE_API_KEY"),
    "stripe_secret_key": (_key("sk_live_", (ALNUM, 99)), "STRIPE_SECRET_KEY"),
    "huggingface_token": (_key("hf_", (string.ascii_letters, 34)), "HF_TOKEN"),
    "npm_token": (_key("npm_", (ALNUM, 36)), "NPM_TOKEN"),
    "sendgrid_key": (_key("SG.", (URLSAFE, 22), ".", (URLSAFE, 43)), "SENDGRID_API_KEY"),
    "jwt": (_jwt, "Authorization: Bearer"),
    "private_key": (_pem, "key.pem"),
    "connection_string_password": (_connection, "DATABASE_URL"),
}

CONTEXTS = [
    "Here is my key {value}, why does the API say 401?",
    "{name}={value}",
    'export {name}="{value}"',
    'config = {{"{name}": "{value}", "timeout": 30}}',
    "client = Client(api_key='{value}')\nprint(client.list())",
    "My .env has:\n{name}={value}\nDEBUG=true\nand it still fails.",
    "curl https://api.example.com/v1/items -H '{name}: {value}'",
    "{name}: {value}\nregion: eu-west-1",
    "I rotated it yesterday, the new one is {value}",
    "Can you check this snippet?\n```\n{name} = '{value}'\n```",
]

LOOK_ALIKES: list[Callable[[random.Random], str]] = [
    lambda r: f"The commit {r.randbytes(20).hex()} broke the build.",
    lambda r: f"sha256: {r.randbytes(32).hex()}",
    lambda r: f"Request id {_uuid(r)} failed with a timeout.",
    lambda r: f'<img src="data:image/png;base64,{base64.b64encode(r.randbytes(60)).decode()}">',
    lambda r: "Use sk-learn? No: it's scikit-learn, imported as sklearn.",
    lambda r: "DATABASE_URL=postgres://app:${DB_PASSWORD}@db.internal/prod",
    lambda r: "Set OPENAI_API_KEY=<your key here> before running the script.",
    lambda r: "Clone https://git@github.com/org/repo.git and run make.",
    lambda r: f"https://example.com/reset?token=<token>&user={r.randrange(10**6)}",
    lambda r: f"Version {r.randrange(1, 9)}.{r.randrange(30)}.{r.randrange(30)} was released.",
    lambda r: f"The AWS account id is {r.randrange(10**11, 10**12)}.",
    lambda r: f'ETag: W/"{_pick(r, ALNUM, 27)}"',
    lambda r: "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ" + _pick(r, B64, 60) + " me@laptop",
    lambda r: f"Tracking number 1Z{_pick(r, string.ascii_uppercase + string.digits, 16)}",
    lambda r: f"my variable is named sk_{_pick(r, string.ascii_lowercase, 6)}_count",
    lambda r: "-----BEGIN PUBLIC KEY-----\n" + base64.b64encode(r.randbytes(48)).decode(),
    lambda r: "mysql://root@localhost/test has no password set",
    lambda r: f"eyJhbGciOi is how every JWT starts; ours is in the vault ({_uuid(r)}).",
]


def _uuid(rng: random.Random) -> str:
    h = rng.randbytes(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def planted(per_format: int = 60, seed: int = 0) -> list[tuple[str, str, str]]:
    """(format, text, the secret) for each planted secret."""
    rng = random.Random(seed)
    out = []
    named = [c for c in CONTEXTS if "{name}" in c]
    for name, (make, variable) in FORMATS.items():
        # A bare AWS secret key is 40 characters of base64, like any hash: only its name
        # makes it one, so it is planted only where its name is.
        contexts = named if name == "aws_secret_access_key" else CONTEXTS
        for _ in range(per_format):
            value = make(rng)
            text = rng.choice(contexts).format(name=variable, value=value)
            out.append((name, text, value))
    return out


def look_alikes(count: int = 1000, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(LOOK_ALIKES)(rng) for _ in range(count)]
