"""Chat messages between agentlab's recorded shape and the OpenTelemetry conventions.

agentlab records what the agent passed (chat dicts: ``role``, ``content``, ``tool_calls``,
``tool_call_id``). The GenAI conventions carry ``{role, parts: [...]}`` messages as JSON in
``gen_ai.input.messages``/``gen_ai.output.messages``; OpenInference flattens them into
``llm.input_messages.N.message.*`` attributes. A message maps across when it can be given
back exactly; otherwise it is kept in the GenAI shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["from_genai_message", "json_value", "oi_messages", "span_messages",
           "to_genai_message"]

_OI_MESSAGE = re.compile(r"^llm\.(input|output)_messages\.(\d+)\.message\.(.+)$")
_OI_TOOL_CALL = re.compile(r"^tool_calls\.(\d+)\.tool_call\.(.+)$")
_OI_CONTENT = re.compile(r"^contents\.(\d+)\.message_content\.(.+)$")


def json_value(value: Any) -> Any:
    """An attribute that may hold JSON text: parsed when it is JSON, as given otherwise."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def parts_text(parts: list[Any]) -> str | None:
    if len(parts) == 1 and isinstance(parts[0], dict) and parts[0].get("type") == "text":
        content = parts[0].get("content")
        return content if isinstance(content, str) else None
    return None


def from_genai_message(m: Any) -> Any:
    """A GenAI ``{role, parts}`` message in the chat shape agentlab records (role, content,
    tool_calls, tool_call_id) when it maps exactly; as given otherwise."""
    if not isinstance(m, dict) or not isinstance(m.get("parts"), list):
        return m
    role, parts = m.get("role"), m["parts"]
    text = parts_text(parts)
    extra = {k: v for k, v in m.items() if k not in ("role", "parts", "finish_reason")}
    if text is not None:
        return {"role": role, "content": text, **extra}
    if parts and all(isinstance(p, dict) and p.get("type") == "tool_call" for p in parts):
        return {"role": role, "content": None, **extra, "tool_calls": [
            {"id": p.get("id"), "type": "function",
             "function": {"name": p.get("name"), "arguments": json.dumps(p.get("arguments"))}}
            for p in parts]}
    if (len(parts) == 1 and isinstance(parts[0], dict)
            and parts[0].get("type") == "tool_call_response"):
        response = parts[0].get("response")
        return {"role": role, "tool_call_id": parts[0].get("id"), **extra,
                "content": response if isinstance(response, str) else json.dumps(response)}
    return m


def oi_messages(attrs: Mapping[str, Any], direction: str) -> list[dict[str, Any]]:
    """OpenInference's flattened ``llm.<direction>_messages.N.message.*`` as chat messages."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        m = _OI_MESSAGE.match(key)
        if m is None or m.group(1) != direction:
            continue
        msg = found.setdefault(int(m.group(2)), {})
        rest = m.group(3)
        call = _OI_TOOL_CALL.match(rest)
        content = _OI_CONTENT.match(rest)
        if call is not None:
            calls = msg.setdefault("_calls", {})
            c = calls.setdefault(int(call.group(1)), {"type": "function", "function": {}})
            sub = call.group(2)
            if sub.startswith("function."):
                c["function"][sub.removeprefix("function.")] = value
            else:
                c[sub] = value
        elif content is not None:
            parts = msg.setdefault("_contents", {})
            parts.setdefault(int(content.group(1)), {})[content.group(2)] = value
        else:
            msg[rest] = value
    out: list[dict[str, Any]] = []
    for i in sorted(found):
        msg = found[i]
        calls = msg.pop("_calls", None)
        contents = msg.pop("_contents", None)
        if contents is not None and "content" not in msg:
            msg["content"] = [contents[j] for j in sorted(contents)]
        if calls is not None:
            msg["tool_calls"] = [calls[j] for j in sorted(calls)]
        out.append(msg)
    return out


def span_messages(a: Mapping[str, Any]) -> tuple[list[Any] | None, Any]:
    """The call's input messages and response, when the span carries content."""
    messages: list[Any] | None = None
    response: Any = None
    raw_in = a.get("gen_ai.input.messages")
    if raw_in is not None:
        parsed = json_value(raw_in)
        messages = [from_genai_message(m) for m in
                    (parsed if isinstance(parsed, list) else [parsed])]
    elif (oi := oi_messages(a, "input")):
        messages = oi
    raw_out = a.get("gen_ai.output.messages")
    if raw_out is not None:
        parsed = json_value(raw_out)
        outs = [from_genai_message(m) for m in (parsed if isinstance(parsed, list) else [parsed])]
        response = outs[0] if len(outs) == 1 else outs
    elif (oi := oi_messages(a, "output")):
        response = oi[0] if len(oi) == 1 else oi
    if (isinstance(response, dict) and response.get("role") == "assistant"
            and set(response) == {"role", "content"} and isinstance(response["content"], str)):
        response = response["content"]
    return messages, response


def to_genai_message(m: Any, *, output: bool = False) -> dict[str, Any]:
    if not isinstance(m, dict):
        out: dict[str, Any] = {"role": "assistant" if output else "user",
                               "parts": [{"type": "text", "content": m if isinstance(m, str)
                                          else json.dumps(m, sort_keys=True)}]}
    elif isinstance(m.get("parts"), list):
        out = dict(m)
    else:
        role = m.get("role") or ("assistant" if output else "user")
        parts: list[dict[str, Any]] = []
        content = m.get("content")
        if role == "tool" and "tool_call_id" in m:
            parts.append({"type": "tool_call_response", "id": m["tool_call_id"],
                          "response": content})
        elif isinstance(content, str):
            parts.append({"type": "text", "content": content})
        elif isinstance(content, list):
            for c in content:
                if isinstance(c, dict) and c.get("type") == "text":
                    parts.append({"type": "text", "content": c.get("text")})
                else:
                    parts.append(c if isinstance(c, dict) and "type" in c
                                 else {"type": "agentlab.value", "content": c})
        elif content is not None:
            parts.append({"type": "text", "content": json.dumps(content, sort_keys=True)})
        for call in m.get("tool_calls") or []:
            fn = (call or {}).get("function") or call or {}
            args = fn.get("arguments")
            parts.append({"type": "tool_call", "id": (call or {}).get("id"),
                          "name": fn.get("name"), "arguments": json_value(args)})
        out = {"role": role, "parts": parts}
        if m.get("name") is not None:
            out["name"] = m["name"]
    if output:
        out.setdefault("finish_reason", "tool_call" if any(
            p.get("type") == "tool_call" for p in out["parts"] if isinstance(p, dict))
            else "stop")
    return out
