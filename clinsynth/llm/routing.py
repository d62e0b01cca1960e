"""Which model serves which role: one StructuredLLM per distinct endpoint config."""

from __future__ import annotations

import json

from clinsynth.llm.endpoint import EndpointConfig, build_chat_model, endpoint_name
from clinsynth.llm.errors import LLMConfigError
from clinsynth.llm.metering import UsageMeter
from clinsynth.llm.methods import MethodChoice
from clinsynth.llm.structured import StructuredLLM
from clinsynth.llm.transport import is_openai_client
from clinsynth.runtime.limits import CallLimits


class LLMRouter:
    """Role ("reasoner", "generator", "critic", ...) → StructuredLLM, with a default."""

    def __init__(self, models: dict[str, StructuredLLM], default: str) -> None:
        if default not in models:
            raise LLMConfigError(f"default role {default!r} has no model; roles: {sorted(models)}")
        self.models = dict(models)
        self.default = default

    def for_role(self, role: str) -> StructuredLLM:
        return self.models.get(role, self.models[self.default])

    def describe(self) -> dict[str, str]:
        """Role → model name, for provenance and the run manifest."""
        return {role: llm.name for role, llm in self.models.items()}

    def call_limits(self) -> list[CallLimits | None]:
        """The distinct limits of the roles' models (None for a model without any)."""
        return list({id(m.limits): m.limits for m in self.models.values()}.values())

    def request_cap(self) -> int | None:
        """Most requests in flight at once over all roles when every model takes its request
        slots in its HTTP client (``transport_slots``); None otherwise (a model without a cap,
        or the in-process local model, which serves one call at a time anyway)."""
        if not all(m.transport_slots for m in self.models.values()):
            return None
        limits = self.call_limits()
        if any(lim is None or lim.concurrency is None for lim in limits):
            return None
        return sum(lim.concurrency or 0 for lim in limits if lim is not None)


def _config_key(cfg: EndpointConfig) -> str:
    data = cfg.model_dump()
    data["api_key"] = cfg.api_key.get_secret_value() if cfg.api_key else None
    return json.dumps(data, sort_keys=True)


def router_from_configs(
    configs: dict[str, EndpointConfig], meter: UsageMeter, limits: CallLimits | None = None
) -> LLMRouter:
    """One StructuredLLM per distinct config (roles with identical configs share it); every
    model shares ``limits`` (concurrency, requests / tokens per minute), when given, and the
    models of one (endpoint, model, structured method) share what is learned of its methods.

    The default role is "default" if configured, else "generator", else the first role.
    """
    if not configs:
        raise LLMConfigError("no LLM endpoint configured")
    shared: dict[str, StructuredLLM] = {}
    choices: dict[tuple[str, ...], MethodChoice] = {}
    models: dict[str, StructuredLLM] = {}
    for role, cfg in configs.items():
        key = _config_key(cfg)
        if key not in shared:
            model = build_chat_model(cfg, limits)
            pair = (endpoint_name(model), cfg.model, cfg.structured_method)
            shared[key] = StructuredLLM(
                model,
                name=cfg.model,
                method=cfg.structured_method,
                meter=meter,
                limits=limits,
                transport_slots=is_openai_client(model),
                methods=choices.setdefault(pair, MethodChoice(cfg.structured_method)),
            )
        models[role] = shared[key]
    default = next((r for r in ("default", "generator") if r in models), next(iter(models)))
    return LLMRouter(models, default)
