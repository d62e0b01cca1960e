"""The LLM layer: chat models for OpenAI-compatible endpoints or a local GGUF, structured output.

Modules: ``errors`` (error classes and what an endpoint failure means for a run), ``transport``
(HTTP client, ChatOpenAI class), ``local`` (llama.cpp model), ``endpoint`` (settings → chat
model, endpoint check), ``parsing`` (JSON out of a reply), ``methods`` (structured-output method
discovery), ``structured`` (``StructuredLLM``), ``metering`` (token totals), ``routing`` (role →
model).
"""

from clinsynth.llm.endpoint import EndpointConfig, build_chat_model, check_endpoint
from clinsynth.llm.errors import (
    FATAL_ENDPOINT_ERRORS,
    LLMConfigError,
    LLMEndpointError,
    LLMError,
    LLMProtocolError,
    LLMRequestError,
    LocalModelError,
    is_fatal,
)
from clinsynth.llm.local import LocalLlamaChat, default_gguf_path
from clinsynth.llm.metering import UsageMeter, current_item
from clinsynth.llm.parsing import extract_json
from clinsynth.llm.routing import LLMRouter, router_from_configs
from clinsynth.llm.structured import StructuredLLM, StructuredResult

__all__ = [
    "FATAL_ENDPOINT_ERRORS",
    "EndpointConfig",
    "LLMConfigError",
    "LLMEndpointError",
    "LLMError",
    "LLMProtocolError",
    "LLMRequestError",
    "LLMRouter",
    "LocalLlamaChat",
    "LocalModelError",
    "StructuredLLM",
    "StructuredResult",
    "UsageMeter",
    "build_chat_model",
    "check_endpoint",
    "current_item",
    "default_gguf_path",
    "extract_json",
    "is_fatal",
    "router_from_configs",
]
