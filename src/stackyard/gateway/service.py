"""The gateway as one object: the HTTP client, the providers and the router, built from config."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from stackyard.config.loader import ConfigError
from stackyard.config.schema import StackyardConfig
from stackyard.gateway.pipeline import Pipeline, Stage
from stackyard.gateway.providers import registry
from stackyard.gateway.providers.base import Provider
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.router import Router
from stackyard.guardrails.policy import Policies
from stackyard.guardrails.screen import InjectionScreen
from stackyard.guardrails.topics import TopicScreen
from stackyard.prompts.snapshot import PromptSnapshot

if TYPE_CHECKING:
    from stackyard.auth.admission import Governance
    from stackyard.cache.service import Cache
    from stackyard.guardrails.ner import EntityTagger
    from stackyard.rag.service import RAG


def build_providers(
    config: StackyardConfig, http: HttpClient, *, source: str = "<config>"
) -> list[Provider]:
    """One provider per deployment; a provider's own complaint becomes a :class:`ConfigError`."""
    providers = []
    for index, entry in enumerate(config.models):
        try:
            providers.append(registry.create(entry, http))
        except (ValueError, ImportError) as exc:
            raise ConfigError(f"{source}: models[{index}] ({entry.name}): {exc}") from None
    return providers


def stages(gateway: Gateway) -> list[Stage]:
    """The pipeline's stages, in their order on the request path (admission before them,
    the routed call after the cache lookup, settlement and the trace on every outcome)."""
    from stackyard.cache.stage import CacheStage
    from stackyard.guardrails.stages import (
        InjectionStage,
        JsonStage,
        PIIStage,
        SecretsStage,
        TopicsStage,
    )
    from stackyard.prompts.stage import PromptStage
    from stackyard.rag.stage import RagStage

    return [
        PromptStage(gateway),
        RagStage(gateway),
        SecretsStage(gateway),
        PIIStage(gateway),
        InjectionStage(gateway),
        TopicsStage(gateway),
        CacheStage(gateway),
        JsonStage(gateway),
    ]


def build_router(config: StackyardConfig, http: HttpClient, *, source: str = "<config>") -> Router:
    """The router over one provider per deployment of the config."""
    return Router(config.models, build_providers(config, http, source=source), config.router)


class Gateway:
    """Receives its parts when it is built (the server's composition root builds the router
    first, then what needs it); a part not given is the embedded default: an open gateway
    with no store, an empty prompt registry, no cache and no RAG."""

    def __init__(
        self,
        config: StackyardConfig,
        *,
        source: str = "<config>",
        http: HttpClient | None = None,
        router: Router | None = None,
        governance: Governance | None = None,
        prompts: PromptSnapshot | None = None,
        cache: Cache | None = None,
        rag: RAG | None = None,
        team_names: Callable[[], dict[str, str]] = dict,
        key_names: Callable[[], dict[str, str]] = dict,
    ) -> None:
        from stackyard.auth.admission import Governance

        self.config = config
        self.http = http or HttpClient()
        self.router = router or build_router(config, self.http, source=source)
        self.governance = governance or Governance(self.router, None, None, master_key=None)
        #: The prompt registry in memory.
        self.prompts = prompts or PromptSnapshot(None)
        #: The LLM cache (None: off).
        self.cache = cache
        #: Collections and retrieval (None: the rag extra is not installed).
        self.rag = rag
        #: Which guardrail policies apply to a request (the gateway's, a route's, a model's, a
        #: team's, a key's).
        self.policies = Policies(config.guardrails, team_names, key_names)
        #: The injection rail (None: no policy turns it on).
        self.injection: InjectionScreen | None = None
        if self.policies.any_on("injection"):
            self.injection = InjectionScreen(config.guardrails.injection)
        #: The entity tagger of PII redaction: loaded once the server has started (None until
        #: then, or when no policy wants it).
        self.tagger: EntityTagger | None = None
        #: The topics rail (None: no policy turns it on).
        self.topics: TopicScreen | None = None
        if self.policies.any_on("topics"):
            self.topics = TopicScreen(config.guardrails.topics.embedding_model)
        #: Every door's request path: the stages in their one order.
        self.pipeline = Pipeline(self, stages(self))

    async def aclose(self) -> None:
        await self.router.aclose()
        await self.http.aclose()
