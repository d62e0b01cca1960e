"""An endpoint's settings, the chat model built from them, and the check that it answers.

An OpenAI-compatible endpoint gets ``ChatOpenAI`` (the OpenAI SDK retries 408/409/429/5xx,
timeouts and connection errors with jittered exponential backoff and honours ``Retry-After``);
``provider="local"`` gets the in-process ``LocalLlamaChat``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from pydantic import BaseModel, SecretStr

from clinsynth.llm.errors import LLMEndpointError, LocalModelError, cause
from clinsynth.llm.local import LocalLlamaChat, default_gguf_path
from clinsynth.llm.replicas import Replicas, Routing, split_base_urls
from clinsynth.llm.transport import chat_openai_class, loop_safe_async_client
from clinsynth.runtime.limits import CallLimits

StructuredMethod = Literal["auto", "json_schema", "function_calling", "json_mode"]


class EndpointConfig(BaseModel):
    """Where and how to reach one chat model."""

    provider: Literal["openai", "local"] = "openai"
    base_url: str | None = None
    api_key: SecretStr | None = None
    model: str
    temperature: float | None = None
    max_tokens: int = 1024
    timeout_s: float = 60
    max_retries: int = 4
    structured_method: StructuredMethod = "auto"
    gguf_path: str | None = None
    n_ctx: int = 4096
    n_threads: int | None = None
    chat_format: str | None = None
    """llama.cpp chat format; None = from the GGUF ("gemma" for the bundled Gemma GGUF)."""
    routing: Routing = "least-loaded"
    """How requests spread over the replicas of a comma-separated ``base_url``."""
    endpoint_rpm: int | None = None
    """Requests per minute per replica (on top of the run's limits over all of them)."""


def _is_official_openai(base_url: str | None) -> bool:
    return base_url is None or "api.openai.com" in base_url


def build_chat_model(cfg: EndpointConfig, limits: CallLimits | None = None) -> BaseChatModel:
    """A LangChain chat model for ``cfg``; builds clients only, touches no network. An
    OpenAI-compatible model takes ``limits``' request slots in its HTTP client."""
    if cfg.provider == "local":
        path = cfg.gguf_path or str(default_gguf_path())
        chat_format = cfg.chat_format or (None if cfg.gguf_path else "gemma")
        return LocalLlamaChat(
            model_path=path,
            model_name=cfg.model,
            n_ctx=cfg.n_ctx,
            n_threads=cfg.n_threads,
            max_tokens=cfg.max_tokens,
            temperature=0.2 if cfg.temperature is None else cfg.temperature,
            chat_format=chat_format,
        )
    urls = split_base_urls(cfg.base_url)
    replicas = Replicas(urls, cfg.routing, cfg.endpoint_rpm) if len(urls) > 1 else None
    base_url = urls[0] if urls else None
    # langchain-openai sends max_completion_tokens; compatible servers may only read max_tokens.
    extra_body = None if _is_official_openai(base_url) else {"max_tokens": cfg.max_tokens}
    api_key = cfg.api_key.get_secret_value() if cfg.api_key else "not-needed"
    chat_openai: Any = chat_openai_class()
    return chat_openai(
        base_url=base_url,
        api_key=SecretStr(api_key),
        model=cfg.model,
        timeout=cfg.timeout_s,
        max_retries=cfg.max_retries,
        temperature=cfg.temperature,
        max_completion_tokens=cfg.max_tokens,
        extra_body=extra_body,
        http_async_client=loop_safe_async_client(limits, replicas),
    )


def endpoint_name(model: BaseChatModel) -> str:
    """Where ``model`` sends its requests, for messages and run provenance."""
    if isinstance(model, LocalLlamaChat):
        return f"local:{model.model_path}"
    if "openai_api_base" in type(model).model_fields:
        return str(getattr(model, "openai_api_base", None) or "https://api.openai.com/v1")
    return type(model).__name__


async def check_endpoint(cfg: EndpointConfig) -> None:
    """Fail fast with one clear line when the endpoint (or local model) is unusable."""
    if cfg.provider == "local":
        try:
            import llama_cpp  # noqa: F401
        except ImportError as exc:
            raise LocalModelError(
                "llama-cpp-python is not installed: pip install 'clinsynth[local]'"
            ) from exc
        path = Path(cfg.gguf_path) if cfg.gguf_path else default_gguf_path()
        if not path.is_file():
            raise LocalModelError(f"GGUF model file not found: {path}")
        return
    urls = split_base_urls(cfg.base_url)
    if len(urls) > 1:  # every replica must answer
        for url in urls:
            await check_endpoint(cfg.model_copy(update={"base_url": url}))
        return
    import openai

    where = cfg.base_url or "https://api.openai.com/v1"
    api_key = cfg.api_key.get_secret_value() if cfg.api_key else "not-needed"
    client = openai.AsyncOpenAI(
        base_url=cfg.base_url, api_key=api_key, timeout=min(cfg.timeout_s, 5.0), max_retries=0
    )
    try:
        await client.models.list()
    except openai.APITimeoutError as exc:
        raise LLMEndpointError(f"{where}: no answer within {min(cfg.timeout_s, 5.0):g}s") from exc
    except openai.APIConnectionError as exc:
        raise LLMEndpointError(f"{where}: cannot connect ({cause(exc)})") from exc
    except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
        raise LLMEndpointError(
            f"{where}: API key rejected (HTTP {exc.status_code}); set the endpoint's api_key"
        ) from exc
    except openai.InternalServerError as exc:
        raise LLMEndpointError(f"{where}: server error (HTTP {exc.status_code})") from exc
    except openai.APIStatusError:
        return  # it answered; some servers just lack GET /models
    finally:
        await client.close()
