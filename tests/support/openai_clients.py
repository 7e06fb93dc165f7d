"""The real ``openai`` client, instrumented in turn by the three OpenTelemetry instrumentations
of it, calling :mod:`tests.support.fake_openai`: the spans driftnet gets from a service that uses them.

Every instrumentor patches the ``openai`` module for the whole process, so
:func:`instrumented` instruments with the test's own tracer provider, sets the instrumentation's
environment variables, and undoes both on the way out (and checks no wrapper is left on any
``openai`` class): tests stay independent of each other and of their order, and each xdist
worker is a process of its own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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


def _proxies() -> Iterator[tuple[str, object, str, wrapt.BaseObjectProxy[Any]]]:
    """Every wrapt proxy (a wrapped function) on an ``openai`` module or class: its dotted name,
    its owner, its attribute name and the proxy. ``type(value)`` is tested, not
    ``isinstance(value, ...)``: openai's module-level lazy clients answer ``__class__`` by
    building a client."""
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.partition(".")[0] != "openai":
            continue
        for name, value in list(vars(module).items()):
            if issubclass(type(value), wrapt.BaseObjectProxy):
                yield f"{module_name}.{name}", module, name, value
            elif issubclass(type(value), type) and value.__module__ == module_name:
                for attr, member in list(vars(value).items()):
                    if issubclass(type(member), wrapt.BaseObjectProxy):
                        yield f"{module_name}.{value.__qualname__}.{attr}", value, attr, member


def patched() -> list[str]:
    """The openai functions an instrumentor has wrapped (none when all are undone).

    Every class of every loaded ``openai`` module, not a few entry points; and wrapt's
    ``BaseObjectProxy``: since wrapt 2 a ``FunctionWrapper`` is not a ``wrapt.ObjectProxy``."""
    return sorted(name for name, *_ in _proxies())


_OPENLLMETRY: Final = "opentelemetry.instrumentation.openai"


def _is_openllmetrys(proxy: wrapt.BaseObjectProxy[Any]) -> bool:
    """Whether OpenLLMetry's ``opentelemetry.instrumentation.openai`` (not the official
    ``opentelemetry.instrumentation.openai_v2``) made the wrapper."""
    module = getattr(getattr(proxy, "_self_wrapper", None), "__module__", None) or ""
    return module == _OPENLLMETRY or module.startswith(f"{_OPENLLMETRY}.")


def _unwrap_openllmetry() -> None:
    """Undo the wrappers OpenLLMetry's uninstrument leaves: all of them (0.62.4). It calls
    ``unwrap("openai.resources.chat.completions", "Completions.create")``, which reads the
    module path as ``<module>.<class>`` and then looks up ``"Completions.create"`` on the
    module, finds nothing and does nothing. Left in place, the next OpenLLMetry run wraps on top
    of them: two ``chat_wrapper``s per call, the inner one sending spans to an earlier test's
    provider, and the two stream wrappers (proxies sharing the stream's attributes) each adding
    every chunk to the same response, so a streamed answer's text comes out doubled."""
    while left := [point for point in _proxies() if _is_openllmetrys(point[3])]:
        for _, owner, name, proxy in left:
            setattr(owner, name, proxy.__wrapped__)


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
        if chosen.name == "openllmetry":
            _unwrap_openllmetry()
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
