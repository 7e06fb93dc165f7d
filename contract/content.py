"""What the model was given and what it answered (Input, Output): absent is not empty.

**Absent is not empty.** A producer that does not capture message content (OpenTelemetry
instrumentations do not by default, and privacy rules often forbid it) leaves ``output`` (and
``input.messages``) out, or sends messages without a ``content``; such an event's content is
*not captured* (:attr:`~driftnet.contract.events.InferenceEvent.output_captured` is False),
which is not the same as an empty answer: the content rules (empty, refusal, invalid JSON) do
not judge it, and windows count how many answered events carried content, so a content-based
rate with no content behind it is unmeasured, not zero. ``null`` is read as absent throughout.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, SerializerFunctionWrapHandler, model_serializer

from driftnet.contract.parts import KEEP_UNKNOWN, otel


def _content_given(messages: list[Message]) -> bool:
    """Whether a message list, as sent, carries content: empty (an answer of nothing), or a
    message with a ``content`` or tool calls (messages with neither are metadata only: role,
    finish reason)."""
    return not messages or any(
        m.content is not None or (m.model_extra or {}).get("tool_calls") for m in messages
    )


class Message(BaseModel):
    """A chat message. ``content`` is a string or a list of parts and is not walked."""

    model_config = KEEP_UNKNOWN

    role: str
    content: Any = None


class _KeepsAbsence(BaseModel):
    """A model whose ``messages`` left out stay left out when it is written back to JSON (an
    empty list would read back as an empty answer: content captured)."""

    model_config = KEEP_UNKNOWN

    messages: list[Message] = Field(default_factory=list)

    @property
    def captured(self) -> bool:
        """Whether the producer sent this side's content: messages with content or tool calls
        (an explicitly empty list counts: an answer of nothing)."""
        return self._messages_given()

    def _messages_given(self) -> bool:
        return "messages" in self.__pydantic_fields_set__ and _content_given(self.messages)

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and "messages" not in self.model_fields_set:
            data.pop("messages", None)
        return data


class Input(_KeepsAbsence):
    """What the model was given."""

    messages: list[Message] = Field(
        default_factory=list, **otel("gen_ai.input.messages", "Chat history sent to the model.")
    )


class Output(_KeepsAbsence):
    """What the model answered: chat messages, or plain text for completion-style calls."""

    messages: list[Message] = Field(
        default_factory=list, **otel("gen_ai.output.messages", "Messages the model returned.")
    )
    text: str | None = Field(None, description="Plain-text output, when there are no messages.")

    @property
    def captured(self) -> bool:
        """Whether the producer sent the answer: ``text``, or messages with content."""
        return self.text is not None or self._messages_given()


def content_text(content: Any) -> str:
    """Text of a message content: a string, or a list of parts with ``text``/``content``."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                text = part.get("text", part.get("content"))
                if isinstance(text, str):
                    texts.append(text)
        return "".join(texts)
    return ""
