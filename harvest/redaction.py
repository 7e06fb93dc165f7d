"""Redaction of personal data and secrets in failure records, before they are written. Pure.

Failure records carry the full event to a Kafka topic and to Parquet, where they are kept and
read by people who never had access to user data. So before anything is written, message
content is scanned and each hit is replaced by a marker naming its kind:

* ``[REDACTED:email]`` - e-mail addresses.
* ``[REDACTED:phone]`` - phone numbers written with separators or a leading ``+``: international
  (``+44 20 7946 0958``), North American (``(415) 555-2671``), national with a trunk ``0``
  (``020 7946 0958``). Bare digit runs are left alone: order ids and epoch timestamps look the same.
* ``[REDACTED:card]`` - 14-19 digit payment card numbers that pass the Luhn checksum.
* ``[REDACTED:api_key]`` - provider keys (``sk-``, ``AKIA``/``ASIA``, ``ghp_``, ``github_pat_``,
  ``xox?-``, ``AIza``), JWTs, ``Bearer`` tokens, and random-looking runs of 32+ hex/base64
  characters (letters and digits interleaved).
* ``[REDACTED:<name>]`` - :attr:`RedactionSettings.extra_patterns`, applied first.

Limits: regex redaction is best-effort. Names, postal addresses, national ids and dates of birth
are not detected, nor are phone numbers without separators or secrets that look like words. 32+
hex strings are redacted even when they are SHA digests or trace ids. A redacted record is
safer to share, not anonymous.

Speed: this runs on the worker's hot path for every failing event, so the patterns are compiled
once and each is skipped when a cheap check (an ``@``, enough digits, a key prefix) rules it out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import pairwise
from typing import Any, Literal, NamedTuple, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from streams.events import InferenceEvent, Message, Span

Kind = Literal["email", "phone", "card", "api_key"]
RedactedField = Literal[
    "input.messages", "output.messages", "output.text", "feedback.comment", "attributes", "spans"
]
"""Parts of an event that are scanned. ``attributes`` and ``spans`` (each span's attributes and
unknown fields) are walked recursively: every string value, at any depth, never a key."""
DEFAULT_FIELDS: tuple[RedactedField, ...] = (
    "input.messages",
    "output.messages",
    "output.text",
    "feedback.comment",
)
_NAME = re.compile(r"[A-Za-z0-9_]+")


class RedactionSettings(BaseModel):
    """What to redact, and where."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    kinds: tuple[Kind, ...] = get_args(Kind)
    fields: tuple[RedactedField, ...] = DEFAULT_FIELDS
    extra_patterns: dict[str, str] = Field(default_factory=dict)
    """Name -> regex; each match becomes ``[REDACTED:<name>]``. Applied before the built-ins."""

    @field_validator("extra_patterns")
    @classmethod
    def _valid_patterns(cls, patterns: dict[str, str]) -> dict[str, str]:
        for name, pattern in patterns.items():
            if not _NAME.fullmatch(name):
                raise ValueError(f"extra_patterns key {name!r}: use letters, digits and _ only")
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"extra_patterns[{name!r}] is not a valid regex: {exc}") from None
            if compiled.fullmatch(""):
                raise ValueError(f"extra_patterns[{name!r}] matches the empty string")
        return patterns


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _only_digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _card(match: re.Match[str]) -> bool:
    digits = _only_digits(match[0])
    return 14 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn(digits)


def _phone(match: re.Match[str]) -> bool:
    n = len(_only_digits(match[0]))
    return 8 <= n <= 15 if match["intl"] else 9 <= n <= 12 if match["national"] else True


_CLASS = {**dict.fromkeys("0123456789", 0), **dict.fromkeys("abcdefghijklmnopqrstuvwxyz", 1)}
_HEX = re.compile(r"[0-9a-fA-F]+")
_DIGIT_RUN = re.compile(r"\d+")


def _random_looking(match: re.Match[str]) -> bool:
    """Letters and digits interleaved like a random token, not like ``Release2024Notes``."""
    alnum = "".join(ch for ch in match[0] if ch.isalnum())
    if len(_DIGIT_RUN.findall(alnum)) < 2:  # so letters sit between the digits
        return False
    if _HEX.fullmatch(match[0]):
        return True
    classes = [_CLASS.get(ch, 2) for ch in alnum]
    changes = sum(a != b for a, b in pairwise(classes))
    return changes >= 0.4 * len(alnum)


_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}(?![A-Za-z0-9-])"
)
_PHONE = re.compile(
    r"(?<![\w+@.-])(?:"
    r"(?P<intl>\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?[ .-]?\d{1,14}(?:[ .-]\d{1,14}){0,5})"
    r"|(?P<national>(?:\(0\d{1,4}\) ?|0\d{1,4}[ .-])\d{2,8}(?:[ .-]\d{2,8}){0,3})"
    r"|(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"
    r")(?![\w@]|[.,:/-]\d)"
)
_CARD = re.compile(
    r"(?<![\w.,+-])(?:"
    r"[2-6]\d{3}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?"
    r"|3\d{3}([ -])\d{6}\2\d{4,5}"
    r"|[2-6]\d{13,18}"
    r")(?![\w]|[.,:/-]\d)"
)
_KEY_PREFIXES = ("sk-", "AKIA", "ASIA", "_", "xox", "AIza", "eyJ")
_PREFIXED_KEY = re.compile(
    r"(?<![\w-])(?:sk-[A-Za-z0-9_-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_[A-Za-z0-9_]{22,}|xox[baprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{30,}"
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})(?![\w-])"
)
_BEARER = re.compile(r"(?i)(?<=\bbearer )(?=[\w.~+/-]*\d)[\w.~+/-]{16,}=*")
_LONG_TOKEN = re.compile(r"(?<![\w+/-])[\w+/-]{32,}={0,2}(?![\w+/=-])", re.ASCII)


def _digits_at_least(text: str, n: int) -> bool:
    return sum(map(text.count, "0123456789")) >= n


class _Rule(NamedTuple):
    kind: str
    pattern: re.Pattern[str]
    ready: Callable[[str], bool]
    """Cheap pre-check: False when the pattern cannot match."""
    accept: Callable[[re.Match[str]], bool] | None = None
    """Validation of a match (a checksum, a digit count); None accepts every match."""


def _always(_text: str) -> bool:
    return True


def _substitute(
    pattern: re.Pattern[str], marker: str, accept: Callable[[re.Match[str]], bool] | None, text: str
) -> tuple[str, int]:
    """``pattern.subn`` with ``marker``, keeping the matches that ``accept`` turns down."""
    if accept is None:
        return pattern.subn(marker, text)
    hits = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal hits
        if not accept(match):
            return match[0]
        hits += 1
        return marker

    return pattern.sub(replace, text), hits


_BUILTIN: tuple[_Rule, ...] = (
    _Rule("email", _EMAIL, lambda t: "@" in t),
    _Rule("api_key", _PREFIXED_KEY, lambda t: any(p in t for p in _KEY_PREFIXES)),
    _Rule("api_key", _BEARER, lambda t: "earer " in t or "EARER " in t),
    _Rule(
        "api_key", _LONG_TOKEN, lambda t: len(t) >= 32 and _digits_at_least(t, 2), _random_looking
    ),
    _Rule("card", _CARD, lambda t: _digits_at_least(t, 14), _card),
    _Rule("phone", _PHONE, lambda t: _digits_at_least(t, 8), _phone),
)


M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _with(model: M, **values: Any) -> M:
    """``model`` itself when every value is already its own, else a copy with the new ones."""
    update = {key: new for key, new in values.items() if new is not getattr(model, key)}
    return model.model_copy(update=update) if update else model


def _map(items: list[T], fn: Callable[[T], T]) -> list[T]:
    """``fn`` over ``items``; ``items`` itself when ``fn`` returned every element unchanged."""
    new = [fn(item) for item in items]
    return items if all(a is b for a, b in zip(new, items, strict=True)) else new


class _Pass:
    """One redaction pass: the rules to apply and the hits counted so far."""

    def __init__(self, rules: tuple[_Rule, ...]) -> None:
        self.rules, self.counts = rules, dict[str, int]()

    def text(self, text: str) -> str:
        """Redacted ``text``; the very same object when nothing was found."""
        out = text
        for kind, pattern, ready, accept in self.rules:
            if ready(out):
                out, n = _substitute(pattern, f"[REDACTED:{kind}]", accept, out)
                if n:
                    self.counts[kind] = self.counts.get(kind, 0) + n
        return text if out == text else out

    def walk(self, value: Any) -> Any:
        """``value`` with every string inside redacted (never a key); the same object when
        nothing changed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return _map(value, self.walk)
        if isinstance(value, dict):
            items = {key: self.walk(old) for key, old in value.items()}
            return value if all(items[key] is old for key, old in value.items()) else items
        return value

    def part(self, part: Any) -> Any:
        """A content part: a string, or a dict whose ``text``/``content`` strings are redacted."""
        if isinstance(part, str):
            return self.text(part)
        if not isinstance(part, dict):
            return part
        changed = {
            key: new
            for key in ("text", "content")
            if isinstance(old := part.get(key), str) and (new := self.text(old)) is not old
        }
        return {**part, **changed} if changed else part

    def message(self, message: Message) -> Message:
        content = message.content
        if isinstance(content, list):
            return _with(message, content=_map(content, self.part))
        return _with(message, content=self.text(content) if isinstance(content, str) else content)

    def span(self, span: Span) -> Span:
        extra = {key: self.walk(old) for key, old in (span.model_extra or {}).items()}
        return _with(span, attributes=self.walk(span.attributes), **extra)


class Redactor:
    """Applies :class:`RedactionSettings` to texts and events. Stateless: safe to share."""

    def __init__(self, settings: RedactionSettings | None = None) -> None:
        self.settings = settings or RedactionSettings()
        rules = [_Rule(n, re.compile(p), _always) for n, p in self.settings.extra_patterns.items()]
        rules += [r for r in _BUILTIN if r.kind in self.settings.kinds]
        self._rules: tuple[_Rule, ...] = tuple(rules) if self.settings.enabled else ()
        self._fields = frozenset(self.settings.fields)

    def redact_text(self, text: str) -> tuple[str, dict[str, int]]:
        """``text`` with every hit replaced by its marker, and the number of hits by kind."""
        run = _Pass(self._rules)
        return run.text(text), run.counts

    def redact_event(self, event: InferenceEvent) -> tuple[InferenceEvent, dict[str, int]]:
        """A redacted copy of ``event`` (``event`` itself when nothing was found), and the
        number of hits by kind. The input is never mutated; unknown fields are kept."""
        if not self._rules:
            return event, {}
        run, scan = _Pass(self._rules), self._fields.__contains__
        inp, out, feedback = event.input, event.output, event.feedback
        redacted = _with(
            event,
            input=_with(inp, messages=_map(inp.messages, run.message))
            if scan("input.messages")
            else inp,
            output=_with(
                out,
                messages=_map(out.messages, run.message)
                if scan("output.messages")
                else out.messages,
                text=run.walk(out.text) if scan("output.text") else out.text,
            ),
            feedback=_with(feedback, comment=run.walk(feedback.comment))
            if feedback is not None and scan("feedback.comment")
            else feedback,
            attributes=run.walk(event.attributes) if scan("attributes") else event.attributes,
            spans=_map(event.spans, run.span) if scan("spans") else event.spans,
        )
        if redacted is not event:
            # model_copy copies the instance __dict__, cached properties included: a cached
            # output_text of the original would carry the unredacted answer into the copy.
            redacted.__dict__.pop("output_text", None)
        return redacted, run.counts
