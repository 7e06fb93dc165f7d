"""Redaction: personal data and secrets in message content are replaced before records are written."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from driftnet.contract.events import InferenceEvent
from driftnet.harvest.redaction import RedactionSettings, Redactor
from tests.support.factories import make_event

REDACTOR = Redactor()
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def _event(**overrides: Any) -> InferenceEvent:
    return InferenceEvent.model_validate(make_event(**overrides))


def _user(content: Any, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content, **extra}]}


def _luhn_complete(body: str) -> str:
    """``body`` followed by the check digit that makes it pass the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return body + str(-total % 10)


DETECTED = [
    (
        "email",
        "Please write to jane.doe+orders@example.co.uk about it.",
        "jane.doe+orders@example.co.uk",
    ),
    (
        "email",
        "My address is J_Smith42@mail-server.example.com.",
        "J_Smith42@mail-server.example.com",
    ),
    ("phone", "Call me on +44 20 7946 0958 after six.", "+44 20 7946 0958"),
    ("phone", "My number is (415) 555-2671, thanks.", "(415) 555-2671"),
    ("phone", "Reach me at 415-555-2671 or later.", "415-555-2671"),
    ("phone", "Toll free: 1-800-555-0199.", "1-800-555-0199"),
    ("phone", "Mon numéro: 01 23 45 67 89.", "01 23 45 67 89"),
    ("phone", "Bitte unter +4915123456789 melden.", "+4915123456789"),
    ("phone", "UK office 020 7946 0958, ask for Sam.", "020 7946 0958"),
    ("card", "I paid with 4111 1111 1111 1111 exp 12/27.", "4111 1111 1111 1111"),
    ("card", "card number 5500-0000-0000-0004 was declined", "5500-0000-0000-0004"),
    ("card", "Amex 3782 822463 10005 on file.", "3782 822463 10005"),
    ("card", "use 4242424242424242 for the test", "4242424242424242"),
    (
        "api_key",
        "my key is sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t, why 401?",
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8t",
    ),
    (
        "api_key",
        "ANTHROPIC_API_KEY=sk-ant-api03-x7Yq2LmN9pR4sT6vW8zB1cD3",
        "sk-ant-api03-x7Yq2LmN9pR4sT6vW8zB1cD3",
    ),
    ("api_key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    (
        "api_key",
        "token ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R leaked",
        "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R",
    ),
    (
        "api_key",
        "pat: github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
    ),
    (
        "api_key",
        "slack xoxb-1234567890-0987654321-AbCdEfGhIjKl works",
        "xoxb-1234567890-0987654321-AbCdEfGhIjKl",
    ),
    (
        "api_key",
        "maps key AIzaSyD4x9Qk2Lm7Np3Rs8Tv1Wx6Yz0Ab5Cd2Ef ok",
        "AIzaSyD4x9Qk2Lm7Np3Rs8Tv1Wx6Yz0Ab5Cd2Ef",
    ),
    ("api_key", f"the session token is {JWT}", JWT),
    ("api_key", "Authorization: Bearer 4f7a9c2e1b8d3f6a0c5e", "4f7a9c2e1b8d3f6a0c5e"),
    (
        "api_key",
        "reset link ?token=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
    ),
    ("api_key", "secret: q8Zr2Xk5Vb7Nw1Jm4Hc9Ld3Tf6Gp0Ys2Ua", "q8Zr2Xk5Vb7Nw1Jm4Hc9Ld3Tf6Gp0Ys2Ua"),
]


@pytest.mark.parametrize(
    ("kind", "text", "secret"), DETECTED, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(DETECTED)]
)
def test_each_kind_is_detected_in_a_sentence(kind: str, text: str, secret: str) -> None:
    """Each kind of personal data or secret is replaced by its marker; the sentence around stays."""
    redacted, counts = REDACTOR.redact_text(text)
    assert redacted == text.replace(secret, f"[REDACTED:{kind}]")
    assert counts == {kind: 1}


NOT_REDACTED = [
    "Order 4111 1111 1111 1112 is a 16-digit number that fails the Luhn check.",
    "Order id 1234567890123456 shipped.",
    "Delivery on 2026-11-25, or 2026-11-25T12:00:00Z at the latest, or 25.11.2026 10:30.",
    "Upgrade to version 1.2.3 or 10.4.22 of the app.",
    "Request 123e4567-e89b-12d3-a456-426614174000 failed.",
    "The total is $1,234.56 (or 1 234,56 EUR).",
    "Fixed in commit a1b2c3d, see also 3f78685.",
    "Timestamp 1732536000000 and epoch 1732536000.",
    "Order 20261125-77812 was refunded, 3-5 business days.",
    "Host 192.168.100.200 port 8080.",
    "See MyVeryLongClassNameForTesting2024Handler and how-to-reset-your-password-in-2024-guide.",
    "Use Bearer authentication with /api/v1/users/12345/orders/67890/items.",
    "Mention @support or email support at example dot com.",
]


@pytest.mark.parametrize("text", NOT_REDACTED)
def test_look_alikes_are_not_redacted(text: str) -> None:
    """Non-Luhn numbers, dates, versions, UUIDs, prices, short hashes and ids stay as they are."""
    assert REDACTOR.redact_text(text) == (text, {})


def test_counts_add_up_by_kind() -> None:
    """Counts are per kind and count every occurrence."""
    text = "a@example.com, b@example.org, +1 415 555 2671, 4111111111111111"
    redacted, counts = REDACTOR.redact_text(text)
    assert counts == {"email": 2, "phone": 1, "card": 1}
    assert redacted == "[REDACTED:email], [REDACTED:email], [REDACTED:phone], [REDACTED:card]"


PII = "Mail jane@example.com or call +44 20 7946 0958."
PII_REDACTED = "Mail [REDACTED:email] or call [REDACTED:phone]."


def test_event_content_fields_are_redacted() -> None:
    """Input and output messages, output text and the feedback comment are redacted by default."""
    event = _event(
        input=_user(PII),
        output={"messages": [{"role": "assistant", "content": PII}], "text": PII},
        feedback={"rating": -1, "comment": PII},
    )
    redacted, counts = REDACTOR.redact_event(event)
    assert redacted.input.messages[0].content == PII_REDACTED
    assert redacted.output.messages[0].content == PII_REDACTED
    assert redacted.output.text == PII_REDACTED
    assert redacted.feedback is not None
    assert redacted.feedback.comment == PII_REDACTED
    assert counts == {"email": 4, "phone": 4}


def test_content_as_a_list_of_parts() -> None:
    """Parts that are strings or dicts with text/content are redacted; everything else is kept."""
    image = {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
    parts = [PII, {"type": "text", "text": PII, "cache": True}, {"content": PII}, image, 7]
    redacted, counts = REDACTOR.redact_event(_event(input=_user(parts)))
    assert redacted.input.messages[0].content == [
        PII_REDACTED,
        {"type": "text", "text": PII_REDACTED, "cache": True},
        {"content": PII_REDACTED},
        image,
        7,
    ]
    assert counts == {"email": 3, "phone": 3}


def test_everything_else_is_untouched() -> None:
    """Fields outside the scanned ones, unknown fields and message extras survive unchanged."""
    tool_calls = [{"name": "lookup", "arguments": '{"email": "jane@example.com"}'}]
    event = _event(
        input=_user(PII, name="jane@example.com"),
        output={"messages": [{"role": "assistant", "content": None, "tool_calls": tool_calls}]},
        trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
        attributes={"tenant": "acme", "user_email": "jane@example.com"},
        spans=[{"name": "crm", "attributes": {"phone": "+44 20 7946 0958"}}],
        customer_tier="gold",
    )
    redacted, _ = REDACTOR.redact_event(event)
    before, after = event.model_dump(), redacted.model_dump()
    assert after["input"]["messages"][0].pop("content") == PII_REDACTED
    assert before["input"]["messages"][0].pop("content") == PII
    assert after == before
    assert redacted.model_extra == {"customer_tier": "gold"}
    assert redacted.input.messages[0].model_extra == {"name": "jane@example.com"}


def test_the_input_event_is_not_mutated() -> None:
    """Redaction returns a new event and leaves the one it was given as it was."""
    event = _event(input=_user([{"type": "text", "text": PII}]), output={"text": PII})
    before = event.model_dump()
    redacted, _ = REDACTOR.redact_event(event)
    assert redacted is not event
    assert event.model_dump() == before


def test_clean_event_is_returned_as_is() -> None:
    """With nothing to redact, the very same event object comes back (the cheap path)."""
    event = _event(feedback={"rating": -1, "comment": "Wrong answer on 2026-11-25."})
    redacted, counts = REDACTOR.redact_event(event)
    assert redacted is event
    assert counts == {}


def test_cached_output_text_does_not_leak_into_the_copy() -> None:
    """An output_text computed on the original (by the rules) is not carried over unredacted."""
    event = _event(output={"messages": [{"role": "assistant", "content": PII}]})
    assert event.output_text == PII
    redacted, _ = REDACTOR.redact_event(event)
    assert redacted.output_text == PII_REDACTED


def test_disabled_settings_are_the_identity() -> None:
    """enabled=False returns texts and events unchanged, with no counts."""
    redactor = Redactor(RedactionSettings(enabled=False))
    event = _event(input=_user(PII))
    assert redactor.redact_event(event) == (event, {})
    assert redactor.redact_event(event)[0] is event
    assert redactor.redact_text(PII) == (PII, {})


def test_only_chosen_kinds_are_redacted() -> None:
    """``kinds`` limits what is looked for."""
    redactor = Redactor(RedactionSettings(kinds=("email",)))
    assert redactor.redact_text(PII) == (
        "Mail [REDACTED:email] or call +44 20 7946 0958.",
        {"email": 1},
    )


def test_only_chosen_fields_are_scanned() -> None:
    """``fields`` limits where redaction looks."""
    redactor = Redactor(RedactionSettings(fields=("output.text",)))
    event = _event(input=_user(PII), output={"text": PII})
    redacted, _ = redactor.redact_event(event)
    assert redacted.input.messages[0].content == PII
    assert redacted.output.text == PII_REDACTED


def test_attributes_and_spans_are_walked_recursively_when_asked() -> None:
    """``attributes`` and ``spans`` redact every nested string value, never keys or ids."""
    redactor = Redactor(RedactionSettings(fields=("attributes", "spans")))
    event = _event(
        attributes={"user": {"emails": ["jane@example.com", 3]}, "jane@example.com": True},
        spans=[
            {
                "name": "crm",
                "span_id": "00f067aa0ba902b7",
                "attributes": {"db.statement": "SELECT * WHERE phone = '+44 20 7946 0958'"},
                "request_body": {"email": "jane@example.com"},
            }
        ],
    )
    redacted, counts = redactor.redact_event(event)
    assert redacted.attributes == {
        "user": {"emails": ["[REDACTED:email]", 3]},
        "jane@example.com": True,
    }
    span = redacted.spans[0]
    assert span.attributes == {"db.statement": "SELECT * WHERE phone = '[REDACTED:phone]'"}
    assert span.model_extra == {"request_body": {"email": "[REDACTED:email]"}}
    assert (span.name, span.span_id) == ("crm", "00f067aa0ba902b7")
    assert counts == {"email": 2, "phone": 1}


def test_extra_patterns_use_their_own_marker() -> None:
    """A user pattern is replaced by ``[REDACTED:<name>]`` and counted under its name."""
    redactor = Redactor(RedactionSettings(extra_patterns={"employee_id": r"\bEMP-\d{6}\b"}))
    redacted, counts = redactor.redact_text("Ticket from EMP-004211 (jane@example.com).")
    assert redacted == "Ticket from [REDACTED:employee_id] ([REDACTED:email])."
    assert counts == {"employee_id": 1, "email": 1}


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        ({"ticket": "TKT-(\\d+"}, "extra_patterns['ticket'] is not a valid regex"),
        ({"anything": "x*"}, "extra_patterns['anything'] matches the empty string"),
        ({"bad name": "x"}, "extra_patterns key 'bad name'"),
    ],
)
def test_invalid_extra_patterns_are_rejected(patterns: dict[str, str], message: str) -> None:
    """A pattern that does not compile, matches nothing at all, or has an odd name is a
    validation error naming its key."""
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RedactionSettings(extra_patterns=patterns)


def test_settings_are_strict_and_frozen() -> None:
    """Unknown keys, unknown kinds or fields, and assignment are errors."""
    with pytest.raises(ValidationError):
        RedactionSettings.model_validate({"enable": False})
    with pytest.raises(ValidationError):
        RedactionSettings.model_validate({"kinds": ["ssn"]})
    with pytest.raises(ValidationError):
        RedactionSettings.model_validate({"fields": ["input.text"]})
    with pytest.raises(ValidationError):
        RedactionSettings().enabled = False  # type: ignore[misc]


FRAGMENTS = st.sampled_from(
    [secret for _, _, secret in DETECTED]
    + NOT_REDACTED
    + [" ", "\n", ", ", "-", ".", "(", ")", "+", "@", "0", "1", "42", "call ", "mail ", "Bearer "]
)


@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=20)), max_size=12).map("".join))
def test_redacting_twice_equals_redacting_once(text: str) -> None:
    """Redaction is idempotent: markers and what surrounds them are never redacted again."""
    once, _ = REDACTOR.redact_text(text)
    assert REDACTOR.redact_text(once) == (once, {})


@given(
    st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzéüß .,;:!?'\"\n\t"), max_size=400)
)
def test_text_without_digits_or_at_signs_is_unchanged(text: str) -> None:
    """Prose with no digits, ``@`` or key prefixes comes back as the very same string."""
    redacted, counts = REDACTOR.redact_text(text)
    assert redacted is text
    assert counts == {}


@given(
    st.sampled_from("3456"),
    st.text(alphabet="0123456789", min_size=14, max_size=14),
    st.sampled_from(["", " ", "-"]),
)
def test_luhn_valid_16_digit_cards_are_redacted(first: str, middle: str, sep: str) -> None:
    """Any Luhn-valid 16-digit card number, grouped or not, is redacted."""
    number = _luhn_complete(first + middle)
    grouped = sep.join(number[i : i + 4] for i in range(0, 16, 4))
    redacted, counts = REDACTOR.redact_text(f"card {grouped} please")
    assert len(set(number)) == 1 or (redacted, counts) == (
        "card [REDACTED:card] please",
        {"card": 1},
    )


def test_rejected_look_alikes_keep_the_same_event() -> None:
    """Matches turned down (Luhn, digit count) do not make the event a copy."""
    event = _event(input=_user("Order 4111 1111 1111 1112 of 05-11-2026"))
    assert REDACTOR.redact_event(event) == (event, {})
    assert REDACTOR.redact_event(event)[0] is event


def test_a_text_met_again_is_answered_as_the_first_time() -> None:
    """The redactor's text cache changes no answer: the same redacted text and hit counts for
    a repeated text, the very same object for a clean one, and a bounded number of texts."""
    import driftnet.harvest.redaction as redaction

    redactor = Redactor()
    dirty = "mail ann@example.com or call +44 20 7946 0958, ann@example.com"
    first = redactor.redact_text(dirty)
    assert redactor.redact_text(dirty) == first
    assert Redactor().redact_text(dirty) == first  # and what a fresh redactor says
    clean = "no personal data here " * 3
    assert redactor.redact_text(clean)[0] is clean
    assert redactor.redact_text(clean) == (clean, {})
    for n in range(redaction.TEXT_CACHE_ENTRIES + 10):
        redactor.redact_text(f"text {n}")
    remembered = redactor._remembered.cache_info()
    assert remembered.currsize == redaction.TEXT_CACHE_ENTRIES
    long = "x@example.com " * (redaction.TEXT_CACHE_MAX_CHARS // 10)
    assert redactor.redact_text(long) == Redactor().redact_text(long)
    assert redactor._remembered.cache_info() == remembered  # not looked up, not kept
