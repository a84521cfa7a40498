"""What a prompt version holds, how it is checked when pushed, and its content hash."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stackyard.errors import describe_validation
from stackyard.prompts.template import MUSTACHE

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")

#: The parameters a version may carry for the model it was written for.
CONFIG_KEYS = (
    "model",
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "response_format",
    "tools",
    "tool_choice",
)

#: A prompt named in text: NAME (the latest or the default label), NAME@VERSION, NAME:LABEL.
REFERENCE = re.compile(r"^(?P<name>[^@:]+)(?:@(?P<version>\d+|latest)|:(?P<label>.+))?$")


class Variable(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["string", "number", "integer", "boolean", "array", "object", "messages"] = (
        "string"
    )
    required: bool = True
    default: Any = None
    description: str | None = None


class PromptContent(BaseModel):
    """The content of one version (everything that is hashed)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "chat"] | None = None
    template: str | None = None
    messages: list[dict[str, Any]] | None = None
    variables: dict[str, Variable] = Field(default_factory=dict)
    engine: Literal["mustache", "jinja"] = "mustache"
    config: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> PromptContent:
        if self.type is None:
            self.type = "chat" if self.messages is not None else "text"
        if self.type == "text":
            if not isinstance(self.template, str) or self.messages is not None:
                raise ValueError("a text prompt needs 'template' (a string) and no 'messages'")
        else:
            if not self.messages or self.template is not None:
                raise ValueError("a chat prompt needs 'messages' (a list) and no 'template'")
            for index, message in enumerate(self.messages):
                if message.get("type") == "placeholder":
                    name = message.get("name")
                    spec = self.variables.get(str(name))
                    if spec is not None and spec.type != "messages":
                        raise ValueError(
                            f"messages[{index}]: placeholder '{name}' is a variable of type "
                            f"{spec.type}, not messages"
                        )
                    if spec is None:
                        self.variables[str(name)] = Variable(type="messages")
                elif not isinstance(message.get("role"), str):
                    raise ValueError(f"messages[{index}] needs a 'role'")
        unknown = sorted(set(self.config) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"config: unknown parameter '{unknown[0]}' (known: {', '.join(CONFIG_KEYS)})"
            )
        if self.engine == "mustache":
            used = self._mustache_names()
            declared = set(self.variables)
            for name in sorted(used - declared):
                self.variables[name] = Variable()  # an undeclared variable: a required string
        return self

    def _mustache_names(self) -> set[str]:
        texts = [self.template or ""]
        for message in self.messages or ():
            content = message.get("content")
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                texts += [p.get("text", "") for p in content if isinstance(p, dict)]
        return {m[1] for text in texts for m in MUSTACHE.finditer(text)}

    def schema_dict(self) -> dict[str, dict[str, Any]]:
        """Variables as the renderer checks them (a default counts only when given)."""
        return {
            name: spec.model_dump(exclude_unset=True, exclude={"description"}) | {"type": spec.type}
            for name, spec in self.variables.items()
        }

    def canonical(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "template": self.template,
            "messages": self.messages,
            "variables": {
                n: v.model_dump(exclude_unset=True) for n, v in sorted(self.variables.items())
            },
            "engine": self.engine,
            "config": self.config,
        }

    def content_hash(self) -> str:
        encoded = orjson.dumps(self.canonical(), option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(encoded).hexdigest()


class PushRequest(PromptContent):
    """A push: the content, the prompt's name, a commit message and labels to set."""

    name: str
    message: str | None = None
    labels: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_names(self) -> PushRequest:
        if not NAME.match(self.name):
            raise ValueError("name: letters, digits, '.', '_' and '-', at most 200 characters")
        for label in self.labels:
            if not LABEL.match(label):
                raise ValueError(f"labels: '{label}' is not a valid label name")
        return self

    def content(self) -> PromptContent:
        return PromptContent.model_validate(
            self.model_dump(exclude={"name", "message", "labels"}, exclude_unset=True)
        )


def read_prompt_file(path: Path) -> dict[str, Any]:
    """A prompt from YAML, or from Markdown with YAML front matter (the body is the text
    template)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".md", ".markdown"):
        match = re.match(r"^---\s*\n(.*?)\n---\s*\n?(.*)$", text, re.S)
        if match is None:
            raise ValueError(f"{path}: a Markdown prompt starts with '---' front matter")
        data = yaml.safe_load(match[1]) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: the front matter must be a mapping")
        data.setdefault("template", match[2])
    else:
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping")
    data.setdefault("name", path.stem)
    return data


def describe_error(exc: ValidationError) -> str:
    return describe_validation(exc)[0]
