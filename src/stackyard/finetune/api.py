"""OpenAI's files and fine-tuning APIs, so that the official SDK works:

POST   /v1/files                               multipart: file, purpose
GET    /v1/files                               ?purpose=
GET    /v1/files/{id}
GET    /v1/files/{id}/content
DELETE /v1/files/{id}
POST   /v1/fine_tuning/jobs                    {model, training_file, validation_file?,
                                                hyperparameters?, method?, suffix?, seed?,
                                                metadata?}
GET    /v1/fine_tuning/jobs                    ?after=&limit=
GET    /v1/fine_tuning/jobs/{id}
GET    /v1/fine_tuning/jobs/{id}/events        ?after=&limit=
GET    /v1/fine_tuning/jobs/{id}/checkpoints
POST   /v1/fine_tuning/jobs/{id}/cancel|pause|resume

A key sees its team's files and jobs; the master key sees all. Our LoRA settings go under
``method.lora`` (any field of :class:`stackyard.finetune.settings.Settings`).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pydantic import ValidationError

from stackyard.auth.admission import Governance
from stackyard.auth.principal import Principal
from stackyard.errors import APIError, describe_validation, invalid_request
from stackyard.finetune.data import DataError, read_jsonl
from stackyard.finetune.files import PURPOSES, FileNotFound, Files
from stackyard.finetune.jobs import JobNotFound, Jobs
from stackyard.finetune.settings import Settings, base_learning_rate
from stackyard.gateway.router import Router
from stackyard.server import multipart
from stackyard.server.http import Request, Response
from stackyard.server.routing import Reply, Routes

SUFFIX = re.compile(r"^[a-zA-Z0-9_-]{0,40}$")
FILES = "/v1/files/"
JOBS = "/v1/fine_tuning/jobs/"


def _scope(principal: Principal) -> dict[str, Any]:
    return {"team_id": principal.team_id, "admin": principal.admin}


def _limit(value: str | None) -> int:
    if value is None:
        return 20
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise invalid_request("'limit' must be a number from 1 to 100", param="limit")
    return int(value)


def _file_missing(file_id: str, param: str = "file_id") -> APIError:
    return APIError(404, f"No such File object: {file_id}", param=param, code="file_not_found")


def _job_missing(job_id: str) -> APIError:
    return APIError(
        404, f"No such fine-tuning job: {job_id}", param="fine_tuning_job_id", code="job_not_found"
    )


class FineTuningAPI:
    def __init__(
        self,
        files: Files,
        jobs: Jobs,
        router: Router,
        governance: Governance,
        *,
        trainable: bool = True,
    ) -> None:
        self.trainable = trainable
        self.files = files
        self.jobs = jobs
        self.router = router
        self.governance = governance

    def register(self, routes: Routes) -> None:
        routes.add("POST", ["/v1/files", "/files"], self.upload)
        routes.add("GET", ["/v1/files", "/files"], self.list_files)
        routes.add_prefix("GET", FILES, self.read_file)
        routes.add_prefix("DELETE", FILES, self.delete_file)
        routes.add("POST", ["/v1/fine_tuning/jobs", "/fine_tuning/jobs"], self.create_job)
        routes.add("GET", ["/v1/fine_tuning/jobs", "/fine_tuning/jobs"], self.list_jobs)
        routes.add_prefix("GET", JOBS, self.read_job)
        routes.add_prefix("POST", JOBS, self.act)

    # -- files -----------------------------------------------------------------------------

    async def upload(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        fields, files = multipart.parse(await request.body(), request.header(b"content-type"))
        upload = files.get("file")
        if upload is None:
            raise invalid_request("'file' is required: the file to upload", param="file")
        purpose = fields.get("purpose")
        if purpose not in PURPOSES:
            raise invalid_request(
                f"'purpose' must be one of {', '.join(sorted(PURPOSES))}", param="purpose"
            )
        if purpose == "fine-tune":
            _check_lines(upload.content)
        created = await asyncio.to_thread(
            self.files.create, upload.filename, purpose, upload.content, principal.team_id
        )
        return Response.json(created)

    async def list_files(self, request: Request) -> Reply:
        scope = _scope(self.governance.authenticate(request))
        purpose = request.query.get("purpose")
        data = await asyncio.to_thread(self.files.all, purpose=purpose, **scope)
        return Response.json({"object": "list", "data": data, "has_more": False})

    async def read_file(self, request: Request) -> Reply:
        scope = _scope(self.governance.authenticate(request))
        file_id, _, rest = request.path[len(FILES) :].partition("/")
        try:
            if rest == "content":
                content = await asyncio.to_thread(self.files.content, file_id, **scope)
                return Response(200, content, content_type=b"application/octet-stream")
            if rest:
                raise APIError(404, f"no such path: {request.path}", code="not_found")
            return Response.json(await asyncio.to_thread(self.files.get, file_id, **scope))
        except FileNotFound:
            raise _file_missing(file_id) from None

    async def delete_file(self, request: Request) -> Reply:
        scope = _scope(self.governance.authenticate(request))
        file_id = request.path[len(FILES) :].strip("/")
        try:
            await asyncio.to_thread(self.files.delete, file_id, **scope)
        except FileNotFound:
            raise _file_missing(file_id) from None
        return Response.json({"id": file_id, "object": "file", "deleted": True})

    # -- jobs ------------------------------------------------------------------------------

    async def create_job(self, request: Request) -> Reply:
        principal = self.governance.authenticate(request)
        scope = _scope(principal)
        body = await request.json_object()
        if not self.trainable:
            raise invalid_request(
                "This gateway cannot train: install the 'finetune' extra "
                "(pip install 'stackyard[finetune]').",
                code="finetune_unavailable",
            )
        model = body.get("model")
        deployments = self.router.deployments.get(model) if isinstance(model, str) else None
        local = [
            d
            for d in deployments or ()
            if d.entry.provider == "local" and d.provider.capabilities.chat
        ]
        if not local:
            tunable = [
                name
                for name, group in self.router.deployments.items()
                if any(d.entry.provider == "local" and d.provider.capabilities.chat for d in group)
                and not name.startswith("ft:")
            ]
            raise invalid_request(
                f"'{model}' cannot be fine-tuned here; models that can: "
                f"{', '.join(tunable) or 'none (configure a local chat model)'}",
                param="model",
                code="model_not_available",
            )
        for param in ("training_file", "validation_file"):
            file_id = body.get(param)
            if file_id is None and param == "validation_file":
                continue
            if not isinstance(file_id, str):
                raise invalid_request(f"'{param}' must be a file id", param=param)
            try:
                found = await asyncio.to_thread(self.files.get, file_id, **scope)
            except FileNotFound:
                raise _file_missing(file_id, param) from None
            if found["purpose"] != "fine-tune":
                raise invalid_request(
                    f"{file_id} was uploaded with purpose '{found['purpose']}', not 'fine-tune'",
                    param=param,
                )
        suffix = body.get("suffix") or ""
        if not isinstance(suffix, str) or not SUFFIX.match(suffix):
            raise invalid_request(
                "'suffix' must be up to 40 letters, digits, '-' or '_'", param="suffix"
            )
        metadata = body.get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise invalid_request("'metadata' must be an object", param="metadata")
        settings = _settings(body, local[0].entry.upstream_model)
        created = await asyncio.to_thread(
            self.jobs.create,
            model=model,  # type: ignore[arg-type]
            training_file=body["training_file"],
            validation_file=body.get("validation_file"),
            settings=settings,
            suffix=suffix,
            metadata=metadata,
            team_id=principal.team_id,
        )
        return Response.json(created)

    async def list_jobs(self, request: Request) -> Reply:
        scope = _scope(self.governance.authenticate(request))
        query = request.query
        data, more = await asyncio.to_thread(
            self.jobs.page, after=query.get("after"), limit=_limit(query.get("limit")), **scope
        )
        return Response.json({"object": "list", "data": data, "has_more": more})

    async def read_job(self, request: Request) -> Reply:
        scope = _scope(self.governance.authenticate(request))
        job_id, _, rest = request.path[len(JOBS) :].partition("/")
        query = request.query
        try:
            if rest == "":
                return Response.json(await asyncio.to_thread(self.jobs.get, job_id, **scope))
            if rest == "events":
                after = query.get("after")
                seq = (
                    int(after.removeprefix("ftevent-"))
                    if after and after.removeprefix("ftevent-").isdigit()
                    else None
                )
                data, more = await asyncio.to_thread(
                    self.jobs.events, job_id, after=seq, limit=_limit(query.get("limit")), **scope
                )
                return Response.json({"object": "list", "data": data, "has_more": more})
            if rest == "checkpoints":
                data = await asyncio.to_thread(self.jobs.checkpoints, job_id, **scope)
                return Response.json(
                    {
                        "object": "list",
                        "data": data,
                        "has_more": False,
                        "first_id": data[0]["id"] if data else None,
                        "last_id": data[-1]["id"] if data else None,
                    }
                )
        except JobNotFound:
            raise _job_missing(job_id) from None
        raise APIError(404, f"no such path: {request.path}", code="not_found")

    async def act(self, request: Request) -> Reply:
        scope = _scope(self.governance.authenticate(request))
        job_id, _, action = request.path[len(JOBS) :].partition("/")
        if action not in ("cancel", "pause", "resume"):
            raise APIError(404, f"no such path: {request.path}", code="not_found")
        try:
            job = await asyncio.to_thread(self.jobs.control, job_id, action, **scope)
        except JobNotFound:
            raise _job_missing(job_id) from None
        except ValueError as exc:
            raise invalid_request(str(exc), code="invalid_job_state") from None
        return Response.json(job)


def _settings(body: dict[str, Any], base: str) -> Settings:
    """OpenAI's hyperparameters (top level, or under method.supervised) and ours
    (method.lora)."""
    method = body.get("method") or {}
    if not isinstance(method, dict):
        raise invalid_request("'method' must be an object", param="method")
    if method.get("type", "supervised") != "supervised":
        raise invalid_request("only the 'supervised' method is available", param="method.type")
    supervised = method.get("supervised") or {}
    hyper = {**(body.get("hyperparameters") or {}), **(supervised.get("hyperparameters") or {})}
    values: dict[str, Any] = {"base": base}
    for name in ("n_epochs", "batch_size"):
        if hyper.get(name) not in (None, "auto"):
            values[name] = hyper[name]
    multiplier = hyper.get("learning_rate_multiplier")
    if multiplier not in (None, "auto"):
        if (
            not isinstance(multiplier, int | float)
            or isinstance(multiplier, bool)
            or multiplier <= 0
        ):
            raise invalid_request(
                "'learning_rate_multiplier' must be a positive number",
                param="hyperparameters.learning_rate_multiplier",
            )
        values["learning_rate"] = multiplier
    if body.get("seed") is not None:
        values["seed"] = body["seed"]
    lora = method.get("lora") or {}
    if not isinstance(lora, dict) or "base" in lora:
        raise invalid_request(
            "'method.lora' must be an object of LoRA settings", param="method.lora"
        )
    if "learning_rate" in values:  # the multiplier of the tuning's own base rate
        values["learning_rate"] *= base_learning_rate(str(lora.get("tuning", "lora")))
    try:
        return Settings.model_validate({**values, **lora})
    except ValidationError as exc:
        message, where = describe_validation(exc)
        raise invalid_request(
            message, param=f"hyperparameters.{where}", code="invalid_hyperparameters"
        ) from None


def _check_lines(content: bytes) -> None:
    """Refuse a fine-tuning file whose lines do not parse (per line, up to five shown)."""
    try:
        lines = content.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise invalid_request("the file is not UTF-8 text", param="file") from None
    errors = [r for r in read_jsonl(lines) if isinstance(r, DataError)]
    if not any(line.strip() for line in lines):
        raise invalid_request("the file has no examples", param="file")
    if errors:
        shown = "; ".join(str(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise invalid_request(
            f"the file has {len(errors)} bad lines: {shown}{more}",
            param="file",
            code="invalid_file_format",
        )
