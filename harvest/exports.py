"""Harvested failures as datasets: eval sets and chat fine-tuning sets. Pure.

Both take failure rows as the ``failures`` view gives them, each turned back into its record
document (:func:`driftnet.storage.schema.record_document`) plus the event's label columns.

* ``eval`` -- one JSON object per failing call: ``id``, the ``input`` messages, the ``actual``
  output (null when its content was not captured), why it failed (``reasons``), its ``scores``, and ``metadata`` (cohort, model, time,
  label). For replaying the calls against a new release and scoring them.
* ``openai-chat`` -- ``{"messages": [...]}`` lines for chat fine-tuning: the input messages
  followed by a *labelled human correction* as the assistant turn. A failing output is never
  used as a target: a row without a correction is left out (and counted). Messages are written
  in OpenAI's chat form (:mod:`driftnet.harvest.openai_chat` converts OpenTelemetry message parts); a
  conversation that form cannot hold is left out and counted by what it holds.

``eval`` keeps every message as it was recorded, OpenTelemetry parts included. A failure whose
input was not captured (the producer sent no content) is in neither: there is nothing to replay
or learn from; it is counted.

Inputs that are the same after normalisation (case, whitespace) are exported once: a failure
that repeats a thousand times should not weigh a thousand times in an eval or training set.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from driftnet.contract.content import Input, Output, content_text
from driftnet.harvest.openai_chat import Conversion, Unrepresentable, convert_messages

ExportFormat = Literal["eval", "openai-chat"]

_SPACES = re.compile(r"\s+")


def input_fingerprint(messages: Iterable[Mapping[str, Any]]) -> str:
    """A hash of the input messages' roles and text, ignoring case and runs of whitespace."""
    normalised = "\x1e".join(
        f"{message.get('role', '')}\x1f{_SPACES.sub(' ', content_text(message.get('content'))).strip().lower()}"
        for message in messages
    )
    return hashlib.sha256(normalised.encode()).hexdigest()


@dataclass(slots=True)
class ExportTally:
    """What an export wrote and what it left out, and why."""

    written: int = 0
    duplicates: int = 0
    without_correction: int = 0
    without_input: int = 0
    """Failures whose input was not captured: nothing to replay or learn from."""
    unrepresentable: Counter[str] = field(default_factory=Counter)
    """Conversations OpenAI chat cannot hold, by what (``"a 'compaction' part in a user
    message"``)."""
    reasoning_dropped: int = 0
    """Reasoning parts left out of written ``openai-chat`` lines."""
    seen: set[str] = field(default_factory=set)

    def summary(self, target: str) -> str:
        text = f"exported {self.written} rows to {target}"
        left = []
        if self.duplicates:
            left.append(f"{self.duplicates} duplicate inputs")
        if self.without_correction:
            left.append(
                f"{self.without_correction} failures without a correction "
                "(add one: driftnet label EVENT_ID --label bad --correction TEXT)"
            )
        if self.without_input:
            left.append(
                f"{self.without_input} failures whose input was not captured (the producer "
                "sent no content)"
            )
        if self.unrepresentable:
            what = "; ".join(f"{n} with {why}" for why, n in self.unrepresentable.most_common())
            left.append(
                f"{self.unrepresentable.total()} conversations OpenAI chat cannot hold ({what})"
            )
        if self.reasoning_dropped:
            left.append(
                f"{self.reasoning_dropped} reasoning parts (OpenAI chat messages have no "
                "place for them)"
            )
        return text + (f"; left out {', '.join(left)}" if left else "")


def _as_recorded(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message as recorded (parts and all), with ``content`` even when there was none."""
    return {"role": message.get("role"), "content": message.get("content"), **message}


def eval_item(document: Mapping[str, Any], label: Mapping[str, Any]) -> dict[str, Any]:
    """One eval-set line."""
    event = document["event"]
    output = event.get("output") or {}
    actual_messages = output.get("messages") or []
    actual = (
        None  # not captured: absent is not empty
        if not Output.model_validate(output).captured
        else output["text"]
        if output.get("text") is not None
        else "".join(content_text(m.get("content")) for m in actual_messages)
    )
    return {
        "id": event["event_id"],
        "record_id": document["record_id"],
        "input": [_as_recorded(m) for m in (event.get("input") or {}).get("messages") or []],
        "actual": actual,
        "actual_messages": [_as_recorded(m) for m in actual_messages],
        "reasons": document["reasons"],
        "scores": event.get("scores") or {},
        "metadata": {
            "kind": document["kind"],
            "service": event.get("service"),
            "environment": event.get("environment"),
            "release": event.get("release"),
            "variant": event.get("variant"),
            "prompt_version": event.get("prompt_version"),
            "provider": event.get("provider"),
            "request_model": event.get("request_model"),
            "response_model": event.get("response_model"),
            "timestamp": event.get("timestamp"),
            "status": event.get("status"),
            "attributes": event.get("attributes") or {},
            "redacted": document.get("redacted", False),
            "label": label.get("label"),
            "correction": label.get("correction"),
            "label_note": label.get("label_note"),
        },
    }


def chat_item(
    document: Mapping[str, Any], label: Mapping[str, Any], conversion: Conversion | None = None
) -> dict[str, Any] | None:
    """One fine-tuning line, or None when the event has no human correction to learn from.
    Raises :class:`~driftnet.harvest.openai_chat.Unrepresentable` for a conversation OpenAI chat
    cannot hold."""
    correction = label.get("correction")
    if not correction:
        return None
    recorded = document["event"].get("input", {}).get("messages", [])
    messages = convert_messages(recorded, conversion or Conversion())
    return {"messages": [*messages, {"role": "assistant", "content": correction}]}


def export_items(
    rows: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]],
    export_format: ExportFormat,
    tally: ExportTally,
) -> Iterator[dict[str, Any]]:
    """Lines of ``export_format`` for ``(record document, label)`` pairs, exact-duplicate inputs
    collapsed (the first one kept)."""
    for document, label in rows:
        if not Input.model_validate(document["event"].get("input") or {}).captured:
            tally.without_input += 1
            continue
        conversion = Conversion()
        try:
            item = (
                eval_item(document, label)
                if export_format == "eval"
                else chat_item(document, label, conversion)
            )
        except Unrepresentable as exc:
            tally.unrepresentable[str(exc)] += 1
            continue
        if item is None:
            tally.without_correction += 1
            continue
        fingerprint = input_fingerprint(document["event"].get("input", {}).get("messages", []))
        if fingerprint in tally.seen:
            tally.duplicates += 1
            continue
        tally.seen.add(fingerprint)
        tally.written += 1
        tally.reasoning_dropped += conversion.reasoning_dropped
        yield item
