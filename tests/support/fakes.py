"""Scripted chat models for offline tests."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatResult
from pydantic import BaseModel, Field


class FakeChat(GenericFakeChatModel):
    """GenericFakeChatModel that accepts ``bind_tools`` and records every call."""

    calls: list[list[BaseMessage]] = Field(default_factory=list)
    call_kwargs: list[dict[str, Any]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> FakeChat:
        """Tools are ignored: scripted replies decide whether a tool is called."""
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append(list(messages))
        self.call_kwargs.append(dict(kwargs))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def usage(input_tokens: int, output_tokens: int) -> UsageMetadata:
    """A LangChain usage record."""
    return UsageMetadata(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def tool_call_message(
    name: str, args: dict[str, Any] | BaseModel, *, tokens: tuple[int, int] = (10, 5)
) -> AIMessage:
    """An AIMessage that calls tool ``name`` with ``args``."""
    data = args.model_dump(mode="json") if isinstance(args, BaseModel) else args
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": data, "id": "call_fake_0", "type": "tool_call"}],
        usage_metadata=usage(*tokens),
    )


def fake_chat(
    replies: Iterable[str | dict[str, Any] | BaseModel | AIMessage],
    *,
    tokens: tuple[int, int] = (10, 5),
) -> FakeChat:
    """A FakeChat answering with ``replies`` in order.

    Strings are sent as content verbatim; dicts and pydantic objects as JSON content; AIMessages
    as given. Replies without usage get ``tokens`` (input, output).
    """
    messages: list[AIMessage] = []
    for reply in replies:
        if isinstance(reply, AIMessage):
            messages.append(reply)
            continue
        if isinstance(reply, BaseModel):
            text = reply.model_dump_json()
        elif isinstance(reply, dict):
            text = json.dumps(reply)
        else:
            text = reply
        messages.append(AIMessage(content=text, usage_metadata=usage(*tokens)))
    return FakeChat(messages=iter(messages))
