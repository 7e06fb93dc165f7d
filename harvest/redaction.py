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

import functools
import re
import string
from collections.abc import Callable
from itertools import pairwise
from typing import Any, Literal, NamedTuple, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from driftnet.contract.content import Message
from driftnet.contract.events import InferenceEvent
from driftnet.contract.parts import Span

Kind = Literal["email", "phone", "card", "api_key"]
RedactedField = Literal[
    "input.messages", "output.messages", "output.text", "feedback.comment", "attributes", "spans"
]
"""Parts of an event that are scanned. ``attributes`` and ``spans`` (each span's attributes and
unknown fields) are walked recursively: every string value, at any depth, never a key."""
DEFAULT_FIELDS: tuple[RedactedField, ...] = get_args(RedactedField)[:4]
_NAME = re.compile(r"[A-Za-z0-9_]+")


class RedactionSettings(BaseModel):
    """What to redact, and where."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    enabled: bool = True
    """Redact failing events before their records are written; false writes them as they are."""
    kinds: tuple[Kind, ...] = get_args(Kind)
    """Kinds of personal data and secrets replaced by ``[REDACTED:<kind>]``."""
    fields: tuple[RedactedField, ...] = DEFAULT_FIELDS
    """Parts of the event scanned; ``attributes`` and ``spans`` are walked recursively (every
    string value at any depth, never a key)."""
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
    doubled = (sum(divmod(2 * int(d), 10)) for d in digits[-2::-2])
    return (sum(map(int, digits[-1::-2])) + sum(doubled)) % 10 == 0


def _card(match: re.Match[str]) -> bool:
    digits = "".join(filter(str.isdigit, match[0]))
    return 14 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn(digits)


def _phone(match: re.Match[str]) -> bool:
    n = sum(map(str.isdigit, match[0]))
    return 8 <= n <= 15 if match["intl"] else 9 <= n <= 12 if match["national"] else True


_CLASS = {**dict.fromkeys(string.digits, 0), **dict.fromkeys(string.ascii_lowercase, 1)}
_HEX, _DIGIT_RUN = re.compile(r"[0-9a-fA-F]+"), re.compile(r"[0-9]+")


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


# Patterns start with a character class where they can, so that sre skips ahead to candidate
# positions; a lookbehind first would make it try the whole pattern at every position. What may
# not follow a match includes whatever may start one: redacting twice equals redacting once.
_EMAIL = re.compile(
    r"(?<![\w.%+-])[\w.%+-]{1,64}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}(?![\w%+-]|\.[\w.%+-])",
    re.ASCII,
)
_PHONE = re.compile(
    r"(?=[0-9+(])(?<![\w+@.-])(?:"
    r"(?P<intl>\+\d{1,3}(?:[ .-]?\(\d{1,4}\))?[ .-]?\d{1,14}(?:[ .-]\d{1,14}){0,5})"
    r"|(?P<national>(?:\(0\d{1,4}\) ?|0\d{1,4}[ .-])\d{2,8}(?:[ .-]\d{2,8}){0,3})"
    r"|(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"
    r")(?![\w+(@]|[.,:/-]\d)",
    re.ASCII,
)
_CARD = re.compile(  # 4-4-4-4(-1..3), Amex/Diners 4-6-5/4-6-4, or contiguous
    r"[2-6](?<![\w.,+-].)(?:\d{3}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?"
    r"|(?<=3)\d{3}([ -])\d{6}\2\d{4,5}|\d{13,18})(?![\w]|[.,:/-]\d)",
    re.ASCII,
)
_PREFIXED_KEY = re.compile(
    r"(?<![\w-])(?:sk-[\w-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|github_pat_\w{22,}|xox[baprs]-[A-Za-z0-9-]{10,}|AIza[\w-]{30,}"
    r"|eyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]{8,})(?![\w-])",
    re.ASCII,
)
_BEARER = re.compile(r"(?<=\b[Bb]earer )(?=[\w.~+/-]*\d)[\w.~+/-]{16,}=*", re.ASCII)
_LONG_TOKEN = re.compile(r"(?<![\w+/-])[\w+/-]{32,}={0,2}(?![\w+/=-])", re.ASCII)


def _table(codes: dict[str, bytes]) -> bytes:
    """A ``bytes.translate`` table: each character of a key becomes its code, any other byte x."""
    table = bytearray(b"x" * 256)
    for chars, code in codes.items():
        for byte in chars.encode():
            table[byte] = code[0]
    return bytes(table)


_BOUNDARY = "".join(chr(c) for c in range(128) if not re.match(r"[\w+@.-]", chr(c), re.ASCII))
_SHAPE = _table({string.digits: b"9", " .-": b"s", "+": b"+", "(": b"(", ")": b")"})
_ZEROS = _table({"0": b"0", "123456789": b"9", _BOUNDARY: b"b"})
_RUNS = _table({string.ascii_letters + string.digits + "_+/-": b"a"})


class _Sketch(NamedTuple):
    """Byte-per-character sketches of a text, for the pre-checks. ``shape``: digits as 9,
    separators as s, and + ( ). ``zeros``: 0, other digits as 9, characters that may precede
    a phone number as b. ``runs``: characters of long tokens as a."""

    text: str
    shape: bytes
    zeros: bytes
    runs: bytes

    @classmethod
    def of(cls, text: str) -> _Sketch:
        raw = text.encode("utf-8", "surrogatepass")
        return cls(text, raw.translate(_SHAPE), raw.translate(_ZEROS), raw.translate(_RUNS))


class _Rule(NamedTuple):
    kind: str
    pattern: re.Pattern[str]
    ready: Callable[[_Sketch], bool]
    """A cheap necessary condition for a match."""
    accept: Callable[[re.Match[str]], bool] | None = None
    """Validation of a match (a checksum, a digit count); None accepts every match."""


def _has_key_prefix(s: _Sketch) -> bool:
    t = s.text
    return "sk-" in t or "IA" in t or "_" in t or "xox" in t or "AIza" in t or "eyJ" in t


def _may_be_card(s: _Sketch) -> bool:
    shape = s.shape
    return b"9" * 14 in shape or b"9999s9999s9999s9999" in shape or b"9999s999999s9999" in shape


def _may_be_phone(s: _Sketch) -> bool:
    """``+digit`` (international), ``ddd-ddd-dddd`` or ``(ddd) ddd-dddd`` (North American), or
    a boundary, 0, digit (national)."""
    shape, zeros = s.shape, s.zeros
    return (
        b"+9" in shape
        or b"999s999s9999" in shape
        or b")s999s9999" in shape
        or b")999s9999" in shape
        or b"b09" in zeros
        or b"b00" in zeros
        or zeros.startswith(b"0")
    )


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
    _Rule("email", _EMAIL, lambda s: "@" in s.text),
    _Rule("api_key", _PREFIXED_KEY, _has_key_prefix),
    _Rule("api_key", _BEARER, lambda s: "earer " in s.text and b"9" in s.shape),
    _Rule("api_key", _LONG_TOKEN, lambda s: b"a" * 32 in s.runs, _random_looking),
    _Rule("card", _CARD, _may_be_card, _card),
    _Rule("phone", _PHONE, _may_be_phone, _phone),
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


TEXT_CACHE_ENTRIES = 1024
"""Texts whose redaction a :class:`Redactor` remembers (least recently used out)."""
TEXT_CACHE_MAX_CHARS = 8192
"""Longer texts are scanned every time (a bound on the cache's memory: 1024 x 8 K chars)."""

_Cached = tuple[str | None, tuple[tuple[str, int], ...]]
"""A text's redaction: the redacted text (None: unchanged) and the hits by kind, in order."""


class _Pass:
    """One redaction pass: the rules to apply and the hits counted so far."""

    def __init__(
        self, rules: tuple[_Rule, ...], remembered: Callable[[str], _Cached] | None = None
    ) -> None:
        self.rules, self.counts = rules, dict[str, int]()
        self._remembered = remembered

    def text(self, text: str) -> str:
        """Redacted ``text``; the very same object when nothing was found. A text met before
        (a system prompt, a template) is answered from the cache, with its hits counted."""
        if self._remembered is None or len(text) > TEXT_CACHE_MAX_CHARS:
            return self._scan(text, self.counts)
        redacted, counted = self._remembered(text)
        for kind, n in counted:
            self.counts[kind] = self.counts.get(kind, 0) + n
        return text if redacted is None else redacted

    def scan_once(self, text: str) -> _Cached:
        """``text``'s redaction as :class:`Redactor` remembers it (its hits not counted here)."""
        hits: dict[str, int] = {}
        out = self._scan(text, hits)
        return (None if out is text else out, tuple(hits.items()))

    def _scan(self, text: str, counts: dict[str, int]) -> str:
        """``text`` redacted, its hits added to ``counts``. Rules are applied until nothing
        changes (a marker can change what a rule that ran earlier sees)."""
        out = text
        for _ in range(3 if self.rules else 0):  # bounded: an extra pattern may match markers
            changed, sketch = False, _Sketch.of(out)
            for kind, pattern, ready, accept in self.rules:
                if ready(sketch):
                    new, n = _substitute(pattern, f"[REDACTED:{kind}]", accept, out)
                    if n:  # else keep ``out``: sub makes an equal copy when accept said no
                        out, changed = new, True
                        counts[kind] = counts.get(kind, 0) + n
            if not changed:
                break
        return out

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
        if not isinstance(part, dict):
            return self.text(part) if isinstance(part, str) else part
        new = {k: self.text(v) for k in ("text", "content") if isinstance(v := part.get(k), str)}
        return part if all(new[k] is part[k] for k in new) else {**part, **new}

    def messages(self, messages: list[Message]) -> list[Message]:
        return _map(messages, self._message)

    def _message(self, message: Message) -> Message:
        content = message.content
        if isinstance(content, list):
            return _with(message, content=_map(content, self.part))
        return _with(message, content=self.text(content) if isinstance(content, str) else content)

    def spans(self, spans: list[Span]) -> list[Span]:
        return _map(spans, self._span)

    def _span(self, span: Span) -> Span:
        extra = {key: self.walk(old) for key, old in (span.model_extra or {}).items()}
        return _with(span, attributes=self.walk(span.attributes), **extra)


class Redactor:
    """Applies :class:`RedactionSettings` to texts and events. Safe to share: its only state
    is a bounded cache of texts already scanned (the same system prompt in every event of a
    feature is scanned once), which changes no answer."""

    def __init__(self, settings: RedactionSettings | None = None) -> None:
        self.settings = settings or RedactionSettings()
        extra = self.settings.extra_patterns.items()
        rules = [_Rule(name, re.compile(regex), lambda _: True) for name, regex in extra]
        rules += [r for r in _BUILTIN if r.kind in self.settings.kinds]
        self._rules: tuple[_Rule, ...] = tuple(rules) if self.settings.enabled else ()
        self._fields = frozenset(self.settings.fields)
        self._remembered = functools.lru_cache(maxsize=TEXT_CACHE_ENTRIES)(
            _Pass(self._rules).scan_once
        )

    def redact_text(self, text: str, *, remember: bool = True) -> tuple[str, dict[str, int]]:
        """``text`` with every hit replaced by its marker, and the number of hits by kind.
        ``remember=False`` for texts seen once (a sampled answer): they would push the
        prompts met again and again out of the cache."""
        run = _Pass(self._rules, self._remembered if remember else None)
        return run.text(text), run.counts

    def redact_event(self, event: InferenceEvent) -> tuple[InferenceEvent, dict[str, int]]:
        """A redacted copy of ``event`` (``event`` itself when nothing was found), and the
        number of hits by kind. The input is never mutated; unknown fields are kept."""
        run = _Pass(self._rules, self._remembered)

        def scan(field: RedactedField, redact: Callable[[T], T], value: T) -> T:
            return redact(value) if run.rules and field in self._fields else value

        inp, out, feedback = event.input, event.output, event.feedback
        redacted = _with(
            event,
            input=_with(inp, messages=scan("input.messages", run.messages, inp.messages)),
            output=_with(
                out,
                messages=scan("output.messages", run.messages, out.messages),
                text=scan("output.text", run.walk, out.text),
            ),
            feedback=feedback
            and _with(feedback, comment=scan("feedback.comment", run.walk, feedback.comment)),
            attributes=scan("attributes", run.walk, event.attributes),
            spans=scan("spans", run.spans, event.spans),
        )
        if redacted is not event:
            # model_copy copies the instance __dict__, cached properties included: a cached
            # output_text of the original would carry the unredacted answer into the copy.
            redacted.__dict__.pop("output_text", None)
        return redacted, run.counts
