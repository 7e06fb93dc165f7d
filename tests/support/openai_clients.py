"""The real ``openai`` client, instrumented in turn by the three OpenTelemetry instrumentations
of it, calling :mod:`tests.support.fake_openai`: the spans driftnet gets from a service that uses them.

Every instrumentor patches the ``openai`` module for the whole process, so
:func:`instrumented` instruments with the test's own tracer provider, sets the instrumentation's
environment variables, and undoes both on the way out (and checks the module is unpatched):
tests stay independent of each other and of their order, and each xdist worker is a process of
its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from inspect import getattr_static
from typing import Any, Final, Literal

import openai
import wrapt
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.trace import SpanKind

from tests.support.fake_openai import Answer
from tests.support.otel_client import Instrumented

Setup = Literal[
    "openai-v2",
    "openai-v2-span-only",
    "openai-v2-span-and-event",
    "openllmetry",
    "openllmetry-no-content",
    "openinference",
    "openinference-genai-semconv",
    "openinference-hidden",
]


@dataclass(frozen=True, slots=True)
class Instrumentation:
    """One way a service instruments the openai client: which instrumentor, which settings."""

    name: str
    env: Mapping[str, str]
    content: bool
    """Whether message content reaches the span (what driftnet reads)."""


SETUPS: Final[dict[Setup, Instrumentation]] = {
    # the official one: no content by default; on spans only in the span modes (the latest
    # conventions are always on with opentelemetry-util-genai 1.x)
    "openai-v2": Instrumentation("openai-v2", {}, content=False),
    "openai-v2-span-only": Instrumentation(
        "openai-v2",
        {
            "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
        },
        content=True,
    ),
    "openai-v2-span-and-event": Instrumentation(
        "openai-v2",
        {
            "OTEL_SEMCONV_STABILITY_OPT_IN": "gen_ai_latest_experimental",
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_AND_EVENT",
        },
        content=True,
    ),
    # OpenLLMetry (traceloop): content on by default
    "openllmetry": Instrumentation("openllmetry", {}, content=True),
    "openllmetry-no-content": Instrumentation(
        "openllmetry", {"TRACELOOP_TRACE_CONTENT": "false"}, content=False
    ),
    # OpenInference (Arize): content on by default; GenAI attributes only with the flag
    "openinference": Instrumentation("openinference", {}, content=True),
    "openinference-genai-semconv": Instrumentation(
        "openinference", {"OPENINFERENCE_ENABLE_GENAI_SEMCONV": "true"}, content=True
    ),
    "openinference-hidden": Instrumentation(
        "openinference",
        {"OPENINFERENCE_HIDE_INPUTS": "true", "OPENINFERENCE_HIDE_OUTPUTS": "true"},
        content=False,
    ),
}
_ENV_NAMES: Final = {name for setup in SETUPS.values() for name in setup.env}


def _instrumentor(name: str) -> BaseInstrumentor:
    if name == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as V2

        return V2()  # type: ignore[no-untyped-call]
    if name == "openllmetry":
        from opentelemetry.instrumentation.openai import (
            OpenAIInstrumentor as Traceloop,
        )

        return Traceloop()
    from openinference.instrumentation.openai import OpenAIInstrumentor as Arize

    return Arize()


def patched() -> list[str]:
    """The openai entry points an instrumentor has wrapped (none when all are undone)."""
    from openai.resources.chat.completions import AsyncCompletions, Completions

    points = {
        "Completions.create": getattr_static(Completions, "create"),
        "AsyncCompletions.create": getattr_static(AsyncCompletions, "create"),
        "OpenAI.request": getattr_static(openai.OpenAI, "request"),
        "AsyncOpenAI.request": getattr_static(openai.AsyncOpenAI, "request"),
    }
    return [name for name, point in points.items() if isinstance(point, wrapt.ObjectProxy)]


@contextmanager
def instrumented(setup: Setup, app: Instrumented) -> Iterator[Instrumentation]:
    """The openai module instrumented as ``setup`` says, its spans going to ``app``."""
    chosen = SETUPS[setup]
    saved = {name: os.environ.get(name) for name in _ENV_NAMES}
    for name in _ENV_NAMES:
        os.environ.pop(name, None)
    os.environ.update(chosen.env)
    instrumentor = _instrumentor(chosen.name)
    assert not patched(), f"openai is still patched: {patched()}"
    instrumentor.instrument(tracer_provider=app.provider)
    try:
        yield chosen
    finally:
        instrumentor.uninstrument()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        assert not patched(), f"uninstrument left openai patched: {patched()}"


def client(base_url: str) -> openai.OpenAI:
    """A client of the fake server that does not retry (a 500 is one call, one span)."""
    return openai.OpenAI(base_url=base_url, api_key="sk-fake", max_retries=0, timeout=30.0)


@dataclass(frozen=True, slots=True)
class Call:
    """One call the app made: what it asked for, the trace it is in, what it got."""

    answer: Answer
    stream: bool
    trace_id: str
    text: str | None
    """The answer's text (None when the call raised)."""
    error: str | None


def chat(app: Instrumented, api: openai.OpenAI, answer: Answer, *, stream: bool = False) -> Call:
    """One chat call inside a request span (the service's own), as a service makes it."""
    messages: Any = [
        {"role": "system", "content": "You are a support agent. Be brief."},
        {"role": "user", "content": f"Where is my order #1234? [{answer}]"},
    ]
    with app.tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER) as root:
        trace_id = format(root.get_span_context().trace_id, "032x")
        try:
            if stream:
                pieces = api.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=messages,
                    temperature=0.2,
                    max_tokens=64,
                    stream=True,
                    stream_options={"include_usage": True},
                )
                text = "".join(
                    chunk.choices[0].delta.content or "" for chunk in pieces if chunk.choices
                )
            else:
                response = api.chat.completions.create(
                    model="gpt-4o-mini", messages=messages, temperature=0.2, max_tokens=64
                )
                text = response.choices[0].message.content or ""
        except openai.APIStatusError as exc:
            return Call(answer, stream, trace_id, None, type(exc).__name__)
    return Call(answer, stream, trace_id, text, None)
