"""pydantic-ai messages in agentlab's chat shape, and back (for the pydantic-ai adapter,
:mod:`agentlab.integrations.pydantic_ai`, which re-exports the public names)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    RetryPromptPart,
    SystemPromptPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.usage import RequestUsage
from pydantic_core import to_jsonable_python

from agentlab.errors import ConfigError

__all__ = ["jsonable", "messages_json", "response_from_json", "response_json"]


def jsonable(value: Any) -> Any:
    return value if isinstance(value, str) else to_jsonable_python(value, fallback=repr)


def messages_json(messages: Sequence[ModelMessage]) -> list[dict[str, Any]]:
    """pydantic-ai's message history in agentlab's chat shape: ``system``, ``user``,
    ``assistant`` (text and ``tool_calls``) and ``tool`` messages (one per tool return or
    retry prompt, with its ``tool_call_id``). The instructions are sent as the first
    ``system`` message (a model is sent those of the latest request only). Timestamps and
    per-run ids are left out, so the same conversation records the same messages."""
    out: list[dict[str, Any]] = []
    instructions = next((m.instructions for m in reversed(messages)
                         if isinstance(m, ModelRequest) and m.instructions), None)
    if instructions:
        out.append({"role": "system", "content": instructions})
    for message in messages:
        if isinstance(message, ModelResponse):
            out.append(response_json(message))
            continue
        if not isinstance(message, ModelRequest):
            continue
        for part in message.parts:
            if isinstance(part, SystemPromptPart):
                out.append({"role": "system", "content": part.content})
            elif isinstance(part, UserPromptPart):
                out.append({"role": "user", "content": jsonable(part.content)})
            elif isinstance(part, ToolReturnPart):
                out.append({"role": "tool", "tool_call_id": part.tool_call_id,
                            "name": part.tool_name, "content": jsonable(part.content)})
            elif isinstance(part, RetryPromptPart):
                entry: dict[str, Any] = {"role": "tool" if part.tool_name else "user",
                                         "content": part.model_response()}
                if part.tool_name:
                    entry.update(tool_call_id=part.tool_call_id, name=part.tool_name)
                out.append(entry)
    return out


def response_json(response: ModelResponse) -> dict[str, Any]:
    """A model response as one assistant message: its text, its tool calls (id, name,
    arguments) and its reasoning, if any."""
    text = [p.content for p in response.parts if isinstance(p, TextPart)]
    calls = [{"id": p.tool_call_id, "name": p.tool_name, "arguments": p.args_as_dict()}
             for p in response.parts if isinstance(p, ToolCallPart)]
    thinking = [p.content for p in response.parts if isinstance(p, ThinkingPart)]
    out: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        out["tool_calls"] = calls
    if thinking:
        out["thinking"] = "".join(thinking)
    return out


def response_from_json(data: Mapping[str, Any], *, model_name: str | None = None,
                       input_tokens: int | None = None,
                       output_tokens: int | None = None) -> ModelResponse:
    """The pydantic-ai response a recorded assistant message stands for (text and tool
    calls; reasoning is not given back)."""
    if not isinstance(data, Mapping) or data.get("role") != "assistant":
        raise ConfigError(f"not a recorded pydantic-ai response: {data!r:.200}; expected an "
                          "assistant message recorded by RecordedModel")
    parts: list[Any] = []
    if data.get("content"):
        parts.append(TextPart(str(data["content"])))
    for call in data.get("tool_calls") or ():
        parts.append(ToolCallPart(call["name"], call.get("arguments") or {},
                                  tool_call_id=call["id"]))
    usage = RequestUsage(input_tokens=input_tokens or 0, output_tokens=output_tokens or 0)
    return ModelResponse(parts=parts, usage=usage, model_name=model_name)
