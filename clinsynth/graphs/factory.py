"""Build the live objects of a run from settings (used by the CLI and the servers)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from clinsynth.agents.deps import Deps, run_stopping_errors
from clinsynth.config import EndpointSettings, RunConfig, Settings
from clinsynth.llm import (
    EndpointConfig,
    LLMRouter,
    UsageMeter,
    router_from_configs,
)
from clinsynth.memory.cache import ReasoningCache
from clinsynth.memory.embeddings import Embedder, make_embedder
from clinsynth.memory.registry import AcceptedRegistry
from clinsynth.memory.store import VectorStore
from clinsynth.recipes import Recipe, recipe_class
from clinsynth.runtime.limits import CallLimits


def endpoint_config(ep: EndpointSettings) -> EndpointConfig:
    """Translate settings into the LLM layer's endpoint config."""
    return EndpointConfig(
        provider=ep.provider,
        base_url=ep.base_url,
        api_key=SecretStr(ep.api_key) if ep.api_key else None,
        model=ep.model or "default",
        temperature=ep.temperature,
        max_tokens=ep.max_tokens,
        timeout_s=ep.timeout_s,
        max_retries=ep.max_retries,
        structured_method=ep.structured_method,
        gguf_path=ep.gguf_path,
        n_ctx=ep.n_ctx,
        routing=ep.routing,
        endpoint_rpm=ep.endpoint_rpm,
    )


def build_router(
    endpoints: dict[str, EndpointSettings], meter: UsageMeter, limits: CallLimits | None = None
) -> LLMRouter:
    """One structured-output model per role; identical endpoints share one model."""
    configs = {r: endpoint_config(e) for r, e in endpoints.items()}
    return router_from_configs(configs, meter, limits)


def build_deps(
    settings: Settings,
    run: RunConfig,
    *,
    endpoints: dict[str, EndpointSettings] | None = None,
    store_path: Path | None = None,
    embedder: Embedder | None = None,
    meter: UsageMeter | None = None,
    cache_path: Path | None = None,
    recipe: Recipe | None = None,
) -> tuple[Deps, UsageMeter]:
    """Everything a generation run needs, built from settings; nothing is built at import.
    ``recipe`` overrides the one named by ``run`` (e.g. built with an injected classifier)."""
    meter = meter or UsageMeter()
    emb = embedder or make_embedder(settings.embedder)
    store = VectorStore(store_path or settings.store, emb, collection=run.collection)
    if recipe is None:
        cls = recipe_class(run.recipe)
        recipe = cls(run.recipe_options, **({"store": store} if cls.uses_store else {}))
    limits = CallLimits(run.rpm, run.tpm, concurrency=run.max_concurrency)
    router = build_router(endpoints or settings.endpoints(), meter, limits)
    cache = ReasoningCache(cache_path) if cache_path else None
    deps = Deps(
        llm=router,
        store=store,
        registry=AcceptedRegistry(emb),
        recipe=recipe,
        run=run,
        cache=cache,
        inference_workers=settings.inference_workers,
        fatal=run_stopping_errors(),
    )
    return deps, meter
