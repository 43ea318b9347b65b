"""The OpenAI Agents SDK's items and responses as agentlab records them (used by
:mod:`agentlab.integrations.openai_agents`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from agents.items import ModelResponse
from agents.usage import Usage
from openai.types.responses import ResponseOutputItem
from pydantic import TypeAdapter

from agentlab.errors import ConfigError


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", exclude_none=True)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _arguments(raw: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return raw


def _items_json(system_prompt: str | None, items: Sequence[Any]) -> list[dict[str, Any]]:
    """The SDK's input items in agentlab's chat shape: ``system``, ``user``, ``assistant``
    (text and ``tool_calls`` with parsed arguments) and ``tool`` messages with their
    ``tool_call_id``; other items (reasoning, hosted tools) as the SDK gives them."""
    out: list[dict[str, Any]] = []
    if system_prompt:
        out.append({"role": "system", "content": system_prompt})
    for raw in items:
        item = _jsonable(raw)
        kind = item.get("type") if isinstance(item, Mapping) else None
        if kind == "function_call":
            call = {"id": item.get("call_id"), "name": item.get("name"),
                    "arguments": _arguments(item.get("arguments"))}
            if out and out[-1].get("role") == "assistant" and "tool_calls" in out[-1]:
                out[-1]["tool_calls"].append(call)  # one response's calls: one message
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            out.append({"role": "tool", "tool_call_id": item.get("call_id"),
                        "content": item.get("output")})
        elif isinstance(item, Mapping) and "role" in item:
            out.append({"role": item["role"], "content": _text(item.get("content"))})
        else:
            out.append(item)
    return out


def _text(content: Any) -> Any:
    if isinstance(content, list) and all(isinstance(c, Mapping) and "text" in c
                                         for c in content):
        return "".join(str(c["text"]) for c in content)
    return content


def _response_json(response: ModelResponse) -> dict[str, Any]:
    """A model response as one assistant message: its text and its tool calls."""
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    other: list[Any] = []
    for raw in response.output:
        item = _jsonable(raw)
        kind = item.get("type")
        if kind == "message":
            text.append(str(_text(item.get("content"))))
        elif kind == "function_call":
            calls.append({"id": item.get("call_id"), "name": item.get("name"),
                          "arguments": _arguments(item.get("arguments"))})
        else:
            other.append(item)
    out: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text else None}
    if calls:
        out["tool_calls"] = calls
    if other:
        out["items"] = other
    return out


def _model_name(agent: Any) -> str:
    model = getattr(agent, "model", None)
    if isinstance(model, str):
        return model
    name = getattr(model, "model", None)
    return name if isinstance(name, str) else type(model).__name__ if model else "default"


_OUTPUT_ITEM: TypeAdapter[Any] = TypeAdapter(ResponseOutputItem)


def response_from_record(data: Any) -> ModelResponse:
    """The SDK response a :class:`RecordedModel` call recorded (its raw output items), as a
    replay serves it."""
    if not isinstance(data, Mapping) or not isinstance(data.get("output"), list):
        raise ConfigError(f"not a recorded OpenAI Agents SDK response: {data!r:.200}; expected "
                          "an llm_call recorded by RecordedModel (with its output items)")
    return ModelResponse(output=[_OUTPUT_ITEM.validate_python(i) for i in data["output"]],
                         usage=Usage(), response_id=None)
