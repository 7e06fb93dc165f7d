"""Recorded chat messages -> OpenAI chat messages (what chat fine-tuning accepts). Pure.

A v1 event's message content is whatever its producer sent: a string, OpenAI content parts
(``{"type": "text", "text": ...}``), or, for events built from OpenTelemetry spans, the GenAI
semantic conventions' message *parts* (``opentelemetry.util.genai.types``). Each part type is
converted to its OpenAI counterpart or handled explicitly:

============================  ========================================================
OpenTelemetry part            OpenAI chat
============================  ========================================================
``text``                      the message's text: a plain string when it is the only
                              content, else a ``{"type": "text", "text": ...}`` part
``tool_call``                 an entry of the assistant message's ``tool_calls``:
                              ``{"id", "type": "function", "function": {"name",
                              "arguments": <JSON text>}}`` (a missing id is made up as
                              ``call_<n>`` and given to the next response without one)
``tool_call_response``        a ``{"role": "tool", "tool_call_id", "content"}`` message
                              (content: the response's text, or its JSON)
``blob`` / ``uri`` (image)    an ``image_url`` part of a user message (a blob becomes a
                              ``data:<mime>;base64,...`` URL)
``reasoning``                 left out and counted: chat messages have no place for a
                              model's reasoning, and training on it as the answer is wrong
anything else                 the conversation cannot be represented: :class:`Unrepresentable`
                              (``server_tool_call``, ``compaction``, ``file``, audio or
                              document blobs, an unknown role or part type...)
============================  ========================================================

Content that is OpenAI-shaped already (strings, OpenAI parts, ``tool_calls`` with string
arguments, tool messages with ``tool_call_id``) passes unchanged. Nothing is dropped silently:
a conversation is converted whole, or refused with the reason, which the export counts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool"})
"""Roles of OpenAI chat messages (``function`` is deprecated and not produced)."""
OPENAI_PART_TYPES: Final = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
"""Content part types of OpenAI chat, kept as they are when shaped like OpenAI's."""
_NAMED_ROLES: Final = frozenset({"system", "developer", "user", "assistant"})


def _a(word: str) -> str:
    return f"an {word}" if word[:1] in "aeio" or word.startswith("unk") else f"a {word}"


class Unrepresentable(ValueError):
    """A conversation OpenAI chat messages cannot hold; ``str()`` names what and where."""


@dataclass(slots=True)
class Conversion:
    """State across the messages of one conversation: made-up tool call ids, dropped parts."""

    reasoning_dropped: int = 0
    _made_up: int = 0
    _unanswered: deque[str] = field(default_factory=deque)

    def call_id(self, given: Any) -> str:
        if isinstance(given, str) and given:
            self._unanswered.append(given)
            return given
        self._made_up += 1
        made = f"call_{self._made_up}"
        self._unanswered.append(made)
        return made

    def response_id(self, given: Any, what: str) -> str:
        if isinstance(given, str) and given:
            if given in self._unanswered:
                self._unanswered.remove(given)
            return given
        if not self._unanswered:
            raise Unrepresentable(f"{what} that answers no tool call (it has no id)")
        return self._unanswered.popleft()


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _tool_call(call: Mapping[str, Any], conversion: Conversion) -> dict[str, Any]:
    """A tool call (an OpenTelemetry ``tool_call`` part or OpenAI's form) in OpenAI's form."""
    if call.get("type") == "tool_call":
        arguments = call.get("arguments")
        return {
            "id": conversion.call_id(call.get("id")),
            "type": "function",
            "function": {
                "name": str(call.get("name") or ""),
                "arguments": "{}" if arguments is None else _json_text(arguments),
            },
        }
    function = call.get("function")
    if not isinstance(function, Mapping) or call.get("type", "function") != "function":
        raise Unrepresentable(f"a tool call of type {call.get('type')!r}")
    out = dict(call)
    out["id"] = conversion.call_id(call.get("id"))
    out["type"] = "function"
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        out["function"] = {
            **function,
            "arguments": "{}" if arguments is None else _json_text(arguments),
        }
    return out


def _image_url(part: Mapping[str, Any], role: str) -> dict[str, Any]:
    kind = part.get("type")
    mime = part.get("mime_type")
    if kind == "uri":
        url = part.get("uri")
    elif isinstance(mime, str) and mime.startswith("image/"):
        url = f"data:{mime};base64,{part.get('content') or ''}"
    else:
        raise Unrepresentable(f"an image blob without an image mime type in {_a(role)} message")
    if not isinstance(url, str) or not url:
        raise Unrepresentable(f"an image {kind} part without a URI in {_a(role)} message")
    if role != "user":
        raise Unrepresentable(f"an image in {_a(role)} message (OpenAI takes images from users)")
    return {"type": "image_url", "image_url": {"url": url}}


def _is_image(part: Mapping[str, Any]) -> bool:
    mime = part.get("mime_type")
    return part.get("modality") == "image" or (isinstance(mime, str) and mime.startswith("image/"))


def _content_part(part: Any, role: str, conversion: Conversion) -> dict[str, Any] | None:
    """One part of a message's content as an OpenAI content part; None: left out (counted)."""
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, Mapping):
        raise Unrepresentable(f"a content part that is not an object in {_a(role)} message")
    kind = part.get("type")
    if _openai_part(part):
        return dict(part)  # OpenAI's own: text, image_url, input_audio, file, refusal
    if kind == "text" and isinstance(part.get("content"), str):
        return {"type": "text", "text": part["content"]}
    if kind == "reasoning":
        conversion.reasoning_dropped += 1
        return None
    if kind in ("blob", "uri") and _is_image(part):
        return _image_url(part, role)
    if kind in ("blob", "uri", "file"):
        modality = part.get("modality") or part.get("mime_type") or "unknown"
        raise Unrepresentable(f"{_a(str(modality))} {kind} part in {_a(role)} message")
    raise Unrepresentable(f"a {kind!r} part in {_a(role)} message")


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]] | None:
    if not parts:
        return None
    if len(parts) == 1 and parts[0].get("type") == "text" and set(parts[0]) == {"type", "text"}:
        return str(parts[0]["text"])
    return parts


def _message(
    role: str, source: Mapping[str, Any], parts: list[dict[str, Any]], calls: list[dict[str, Any]]
) -> dict[str, Any] | None:
    out: dict[str, Any] = {"role": role}
    content = _content(parts)
    if content is not None:
        out["content"] = content
    if isinstance(source.get("name"), str) and role in _NAMED_ROLES:
        out["name"] = source["name"]
    if calls:
        out["tool_calls"] = calls
    if role == "assistant" and isinstance(source.get("refusal"), str):
        out["refusal"] = source["refusal"]
    if len(out) == 1:
        return None  # nothing left (only reasoning): no empty turn
    if role != "assistant" and "content" not in out:
        out["content"] = ""
    return out


def _tool_message(
    source: Mapping[str, Any], content: Any, conversion: Conversion
) -> dict[str, Any]:
    """A ``tool`` message; ``content`` a string or a list of parts (text only)."""
    given = source.get("tool_call_id", source.get("id"))
    call_id = conversion.response_id(given, "a tool message")
    if not isinstance(content, str):
        texts = [_content_part(p, "tool", conversion) for p in content or ()]
        if any(t is not None and t.get("type") != "text" for t in texts):
            raise Unrepresentable("a tool message with content other than text")
        kept = [t for t in texts if t is not None]
        content = kept[0]["text"] if len(kept) == 1 and set(kept[0]) == {"type", "text"} else kept
    return {"role": "tool", "tool_call_id": call_id, "content": content}


def _openai_part(part: Any) -> bool:
    """An OpenAI content part: ``{"type": "text", "text": ...}``, ``{"type": "image_url",
    "image_url": ...}`` and so on (the payload under the type's own name)."""
    if not isinstance(part, Mapping):
        return False
    kind = part.get("type")
    if kind == "text":
        return isinstance(part.get("text"), str)
    return kind in OPENAI_PART_TYPES and kind in part


def _openai_call(call: Any) -> bool:
    return (
        isinstance(call, Mapping)
        and call.get("type") == "function"
        and isinstance(call.get("id"), str)
        and isinstance(call.get("function"), Mapping)
        and isinstance(call["function"].get("arguments"), str)
    )


def _is_native(message: Mapping[str, Any]) -> bool:
    """Already an OpenAI chat message: nothing to convert."""
    content = message.get("content")
    if not (
        content is None
        or isinstance(content, str)
        or (isinstance(content, list) and all(map(_openai_part, content)))
    ):
        return False
    calls = message.get("tool_calls")
    if calls is not None and not (isinstance(calls, list) and all(map(_openai_call, calls))):
        return False
    return message.get("role") != "tool" or isinstance(message.get("tool_call_id"), str)


def _native(message: Mapping[str, Any], conversion: Conversion) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message["role"], "content": message.get("content")}
    for key in ("name", "tool_calls", "tool_call_id", "refusal"):
        if key in message:
            out[key] = message[key]
    for call in message.get("tool_calls") or ():
        conversion.call_id(call["id"])
    if message["role"] == "tool":
        conversion.response_id(message["tool_call_id"], "a tool message")
    return out


def convert_message(message: Mapping[str, Any], conversion: Conversion) -> list[dict[str, Any]]:
    """One recorded message as OpenAI chat messages (several when it carries tool responses:
    each is its own ``tool`` message, in the order of the parts)."""
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise Unrepresentable(f"a message of role {role!r}")
    if _is_native(message):
        return [_native(message, conversion)]
    content = message.get("content")
    if role == "tool" and not (
        isinstance(content, list)
        and any(isinstance(p, Mapping) and p.get("type") == "tool_call_response" for p in content)
    ):
        return [_tool_message(message, content, conversion)]
    if isinstance(content, str | Mapping):
        parts: list[Any] = [content]
    elif isinstance(content, list):
        parts = content
    elif content is None:
        parts = []
    else:
        raise Unrepresentable(f"{_a(role)} message whose content is neither text nor parts")
    out: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    seen_calls: list[Mapping[str, Any]] = []
    for part in parts:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "tool_call_response":
            done = _message(role, message, pending, [])
            out.extend([done] if done else [])
            pending = []
            call_id = conversion.response_id(part.get("id"), "a tool_call_response part")
            text = _json_text(part.get("response"))
            out.append({"role": "tool", "tool_call_id": call_id, "content": text})
        elif role == "tool":
            raise Unrepresentable(f"a {kind or 'text'} part beside tool responses")
        elif kind == "tool_call":
            if role != "assistant":
                raise Unrepresentable(f"a tool call in {_a(role)} message")
            seen_calls.append(part)
            calls.append(_tool_call(part, conversion))
        else:
            converted = _content_part(part, role, conversion)
            if converted is not None:
                pending.append(converted)
    for call in message.get("tool_calls") or ():
        if not isinstance(call, Mapping):
            raise Unrepresentable(f"a tool call that is not an object in {_a(role)} message")
        if call in seen_calls:
            continue  # the OpenTelemetry mapping copies tool_call parts into tool_calls
        if role != "assistant":
            raise Unrepresentable(f"a tool call in {_a(role)} message")
        calls.append(_tool_call(call, conversion))
    done = _message(role, message, pending, calls)
    return [*out, done] if done else out


def convert_messages(
    messages: Iterable[Mapping[str, Any]], conversion: Conversion
) -> list[dict[str, Any]]:
    """A conversation as OpenAI chat messages; raises :class:`Unrepresentable`."""
    return [m for message in messages for m in convert_message(message, conversion)]
