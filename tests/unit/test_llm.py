"""Unit tests of clinsynth.llm with scripted fake chat models (no network)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Literal

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field, SecretStr

from clinsynth.llm import (
    EndpointConfig,
    LLMConfigError,
    LLMRouter,
    LocalLlamaChat,
    LocalModelError,
    StructuredLLM,
    UsageMeter,
    build_chat_model,
    check_endpoint,
    extract_json,
    router_from_configs,
)
from clinsynth.schemas import Usage
from tests.support.fakes import fake_chat, tool_call_message


class Verdict(BaseModel):
    label: Literal["yes", "no"]
    score: int = Field(ge=0, le=10)
    reasons: list[str] = Field(default_factory=list)


MESSAGES = [SystemMessage("You judge."), HumanMessage("Is it fine?")]
GOOD = '{"label": "yes", "score": 3, "reasons": ["ok"]}'


def run(llm: StructuredLLM, **kwargs: Any) -> Any:
    return asyncio.run(llm.ainvoke(MESSAGES, Verdict, **kwargs))


# --- extract_json ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        f"```json\n{GOOD}\n```",
        f"Sure! Here it is:\n```\n{GOOD}\n```\nAnything else?",
        f"The answer is {GOOD} -- hope this helps",
        '{"label": "yes", "score": 3, "reasons": ["ok",],}',
        f"{GOOD}\n}}}} <end of answer>",
    ],
)
def test_extract_json_tolerates_common_llm_noise(text: str) -> None:
    assert extract_json(text) == {"label": "yes", "score": 3, "reasons": ["ok"]}


def test_extract_json_keeps_braces_inside_strings() -> None:
    assert extract_json('note: {"a": "x } y {", "b": {"c": 1}} end') == {
        "a": "x } y {",
        "b": {"c": 1},
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [("no json here", "no JSON object"), ('{"label": "yes", "sco', "cut off")],
)
def test_extract_json_reports_unrecoverable_text(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        extract_json(text)


# --- StructuredLLM ---------------------------------------------------------------------------


def test_json_schema_reply_with_fences_is_parsed_first_time() -> None:
    chat = fake_chat([f"```json\n{GOOD}\n```"])
    result = run(StructuredLLM(chat, name="m"))
    assert result.parsed == Verdict(label="yes", score=3, reasons=["ok"])
    assert (result.method, result.attempts, result.error) == ("json_schema", 1, None)
    fmt = chat.call_kwargs[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "Verdict"
    assert fmt["json_schema"]["schema"]["properties"]["label"]["enum"] == ["yes", "no"]


def test_parse_retry_sends_the_error_back_then_succeeds() -> None:
    chat = fake_chat(['{"label": "maybe", "score": 3}', GOOD])
    result = run(StructuredLLM(chat, name="m", parse_retries=1))
    assert result.parsed is not None and result.parsed.label == "yes"
    assert result.attempts == 2
    retry_messages = chat.calls[1]
    assert retry_messages[-2].content == '{"label": "maybe", "score": 3}'
    assert "label" in str(retry_messages[-1].content)
    assert "Reply again" in str(retry_messages[-1].content)


def test_parse_failure_is_returned_with_raw_text_not_raised() -> None:
    chat = fake_chat(['{"label": "yes", "score": 99}', "I cannot answer that."])
    result = run(StructuredLLM(chat, name="m", parse_retries=1))
    assert result.parsed is None
    assert result.raw == "I cannot answer that."
    assert result.error == "no JSON object in the reply"
    assert result.attempts == 2


def test_parse_retries_zero_makes_a_single_call() -> None:
    chat = fake_chat(['{"label": "yes", "score": 99}'])
    result = run(StructuredLLM(chat, name="m", parse_retries=0))
    assert result.parsed is None and result.attempts == 1
    assert result.error is not None and "score" in result.error
    assert len(chat.calls) == 1


def test_usage_is_summed_over_attempts_and_metered_per_name() -> None:
    meter = UsageMeter()
    first = StructuredLLM(fake_chat(["oops", GOOD], tokens=(100, 20)), name="a", meter=meter)
    second = StructuredLLM(fake_chat([GOOD], tokens=(7, 3)), name="b", meter=meter)
    result = run(first)
    run(second)
    assert result.usage == Usage(input_tokens=200, output_tokens=40, calls=2)
    assert meter.by_name() == {
        "a": Usage(input_tokens=200, output_tokens=40, calls=2),
        "b": Usage(input_tokens=7, output_tokens=3, calls=1),
    }
    assert meter.total() == Usage(input_tokens=207, output_tokens=43, calls=3)


def test_function_calling_parses_tool_arguments() -> None:
    reply = tool_call_message("Verdict", {"label": "no", "score": 1}, tokens=(4, 2))
    chat = fake_chat([reply])
    result = run(StructuredLLM(chat, name="m", method="function_calling"))
    assert result.parsed == Verdict(label="no", score=1)
    assert result.method == "function_calling"
    assert result.usage == Usage(input_tokens=4, output_tokens=2, calls=1)


def test_json_mode_puts_the_schema_into_the_system_message() -> None:
    chat = fake_chat([GOOD])
    result = run(StructuredLLM(chat, name="m", method="json_mode"))
    assert result.parsed is not None
    system = chat.calls[0][0]
    assert isinstance(system, SystemMessage)
    assert str(system.content).startswith("You judge.")
    assert '"label"' in str(system.content) and "JSON" in str(system.content)
    assert chat.call_kwargs[0]["response_format"] == {"type": "json_object"}


def test_temperature_is_passed_per_call() -> None:
    chat = fake_chat([GOOD])
    run(StructuredLLM(chat, name="m"), temperature=1.0)
    assert chat.call_kwargs[0]["temperature"] == 1.0


def test_unknown_method_is_a_config_error() -> None:
    with pytest.raises(LLMConfigError, match="unknown structured method"):
        StructuredLLM(fake_chat([]), name="m", method="xml")


def test_usage_meter_is_thread_safe() -> None:
    meter = UsageMeter()

    def work() -> None:
        for _ in range(500):
            meter.add("x", Usage(input_tokens=1, output_tokens=2, calls=1))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert meter.total() == Usage(input_tokens=4000, output_tokens=8000, calls=4000)


# --- router and factory ----------------------------------------------------------------------


def _cfg(**kwargs: Any) -> EndpointConfig:
    return EndpointConfig(**{"base_url": "http://127.0.0.1:9/v1", "model": "m1", **kwargs})


def test_router_shares_models_between_identical_configs() -> None:
    meter = UsageMeter()
    router = router_from_configs(
        {
            "reasoner": _cfg(),
            "generator": _cfg(),
            "critic": _cfg(model="m2"),
            "adjudicator": _cfg(api_key=SecretStr("other-key")),
        },
        meter,
    )
    assert router.for_role("reasoner") is router.for_role("generator")
    assert router.for_role("critic") is not router.for_role("generator")
    assert router.for_role("adjudicator") is not router.for_role("generator")
    assert router.for_role("labeller") is router.for_role("generator")  # default
    assert router.describe() == {
        "reasoner": "m1",
        "generator": "m1",
        "critic": "m2",
        "adjudicator": "m1",
    }
    assert router.for_role("critic").meter is meter
    # One (endpoint, model) learns its structured-output method once, whatever the api key.
    assert router.for_role("adjudicator").methods is router.for_role("generator").methods
    assert router.for_role("critic").methods is not router.for_role("generator").methods


def test_router_rejects_bad_setup() -> None:
    with pytest.raises(LLMConfigError):
        router_from_configs({}, UsageMeter())
    with pytest.raises(LLMConfigError, match="default role"):
        LLMRouter({"a": StructuredLLM(fake_chat([]), name="a")}, default="b")


def test_build_chat_model_openai_sends_max_tokens_to_compatible_servers() -> None:
    model: Any = build_chat_model(_cfg(max_tokens=77, max_retries=2, timeout_s=5))
    assert model.max_retries == 2
    assert model.max_tokens == 77
    assert model.extra_body == {"max_tokens": 77}
    assert model.openai_api_key.get_secret_value() == "not-needed"
    official: Any = build_chat_model(EndpointConfig(model="gpt-x", api_key=SecretStr("k")))
    assert official.extra_body is None


def test_build_chat_model_local_does_not_load_the_model(tmp_path: Any) -> None:
    path = tmp_path / "m.gguf"
    model = build_chat_model(
        EndpointConfig(provider="local", model="tiny", gguf_path=str(path), max_tokens=9)
    )
    assert isinstance(model, LocalLlamaChat)
    assert (model.model_path, model.max_tokens, model.chat_format) == (str(path), 9, None)


def test_local_model_missing_file_or_package_is_a_clear_error(tmp_path: Any) -> None:
    chat = LocalLlamaChat(model_path=str(tmp_path / "absent.gguf"))
    with pytest.raises(LocalModelError, match=r"absent\.gguf|llama-cpp-python is not installed"):
        chat.invoke("hi")
    cfg = EndpointConfig(provider="local", model="x", gguf_path=str(tmp_path / "absent.gguf"))
    with pytest.raises(LocalModelError):
        asyncio.run(check_endpoint(cfg))


class _FakeLlama:
    def __init__(self) -> None:
        self.kwargs: dict[str, Any] = {}

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        self.kwargs = kwargs
        return {
            "choices": [{"message": {"content": GOOD}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
        }


def test_local_chat_passes_llama_constrained_format_and_reports_usage() -> None:
    chat = LocalLlamaChat(model_path="unused.gguf", max_tokens=50)
    fake = _FakeLlama()
    chat._llama = fake
    result = run(StructuredLLM(chat, name="local"), temperature=0.7)
    assert result.parsed is not None and result.method == "json_schema"
    assert result.usage == Usage(input_tokens=12, output_tokens=8, calls=1)
    fmt = fake.kwargs["response_format"]
    assert fmt == {"type": "json_object", "schema": Verdict.model_json_schema()}
    assert fake.kwargs["messages"] == [
        {"role": "system", "content": "You judge."},
        {"role": "user", "content": "Is it fine?"},
    ]
    assert (fake.kwargs["temperature"], fake.kwargs["max_tokens"]) == (0.7, 50)
