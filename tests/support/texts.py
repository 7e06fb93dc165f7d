"""Seeded synthetic texts for the text drift tests: questions on several topics, answers in
several languages and scripts (English, Spanish, Russian, Chinese) and formats (prose, JSON,
code, markdown), at comparable lengths. Every function takes its own generator.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> len(questions(rng, 3, "billing")), answers(rng, 1, "json")[0][0]
(3, '{')
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np

from driftnet.detectors.families.text_drift import TextCheckRequest
from driftnet.detectors.settings import DriftSettings
from driftnet.detectors.windowing.observation import Observation
from driftnet.detectors.windowing.partials import Partial
from driftnet.detectors.windowing.texts import SampledText, pack_texts
from driftnet.detectors.windowing.windows import Window
from tests.support.detector_streams import COHORT

QUESTIONS: Final[dict[str, tuple[Sequence[str], dict[str, Sequence[str]]]]] = {
    "billing": (
        [
            "Why was I charged {n} times for my {plan} subscription this {period}?",
            "Can I get a refund for the {plan} plan? I cancelled on {day} but still paid.",
            "My invoice shows a {fee} I do not recognise, what is it for?",
            "How do I change the card you bill for the {plan} plan before the {period} ends?",
            "The price of my {plan} subscription went up, was I told about it?",
        ],
        {
            "plan": ["premium", "family", "business", "student", "annual", "monthly"],
            "period": ["month", "week", "quarter", "year"],
            "day": ["Monday", "Tuesday", "Friday", "the 3rd", "the 21st"],
            "fee": ["service fee", "late fee", "currency fee", "setup charge", "tax line"],
            "n": ["two", "three", "several"],
        },
    ),
    "shipping": (
        [
            "Where is my order {order}? Tracking has said {status} since {day}.",
            "My parcel {order} arrived {damage}, how do I send it back?",
            "Can you ship order {order} to {place} instead of my home address?",
            "The courier marked {order} as {status} but nothing came, what now?",
            "How long does delivery to {place} take for a {size} parcel?",
        ],
        {
            "order": ["A-1042", "B-7731", "C-2290", "D-5518", "E-9003", "F-3147"],
            "status": ["in transit", "out for delivery", "delivered", "held at depot"],
            "day": ["Monday", "yesterday", "last week", "the weekend"],
            "damage": ["damaged", "opened", "wet", "with a missing item"],
            "place": ["my office", "a pickup point", "Lisbon", "Toronto", "my neighbour"],
            "size": ["small", "large", "heavy", "fragile"],
        },
    ),
    "account": (
        [
            "I cannot log in, the password reset email never arrives at {mail}.",
            "How do I turn on two-factor authentication with {factor}?",
            "Someone changed my {field} without me, is my account hacked?",
            "Please delete my account and every {data} you keep about me.",
            "Why is my account locked after {n} failed login attempts?",
        ],
        {
            "mail": ["my work address", "my gmail", "the old address", "my new inbox"],
            "factor": ["an authenticator app", "text messages", "a security key"],
            "field": ["password", "email address", "phone number", "display name"],
            "data": ["record", "message", "order history", "backup"],
            "n": ["three", "five", "two"],
        },
    ),
    "cooking": (
        [
            "How long should I roast a {meat} at {temp} degrees for {people} people?",
            "Can I replace {ingredient} with {other} in a {dish} recipe?",
            "What wine goes with {dish} made with {meat}?",
            "My {dish} always comes out {problem}, what am I doing wrong?",
            "How do I keep {ingredient} fresh for a week in the fridge?",
        ],
        {
            "meat": ["chicken", "lamb shoulder", "pork belly", "beef brisket", "duck"],
            "temp": ["180", "200", "160", "220"],
            "people": ["four", "six", "eight"],
            "ingredient": ["butter", "buttermilk", "fresh basil", "eggs", "cream"],
            "other": ["olive oil", "yoghurt", "dried herbs", "flax seeds"],
            "dish": ["risotto", "lasagne", "sourdough", "curry", "paella"],
            "problem": ["too dry", "soggy", "bland", "burnt on top"],
        },
    ),
}
"""Question templates per topic, and the words their slots are filled with."""

PROSE: Final[dict[str, Sequence[str]]] = {
    "en": [
        "Thank you for reaching out to us about this.",
        "I have checked your account and the details of your request.",
        "The duplicate charge will be refunded within five working days.",
        "You can change this at any time from the settings page.",
        "Your order left our warehouse and is on its way to you.",
        "If anything is still unclear, just reply to this message.",
        "We are sorry for the trouble this has caused you.",
        "The change takes effect from your next billing date.",
        "Please allow a few minutes for the update to appear.",
        "I have passed this on to the team that handles it.",
    ],
    "es": [
        "Gracias por ponerse en contacto con nosotros.",
        "He revisado su cuenta y los detalles de su solicitud.",
        "El cargo duplicado se reembolsará en un plazo de cinco días hábiles.",
        "Puede cambiarlo en cualquier momento desde la página de ajustes.",
        "Su pedido salió de nuestro almacén y está en camino.",
        "Si algo no queda claro, responda a este mensaje.",
        "Lamentamos las molestias que esto le ha causado.",
        "El cambio se aplicará a partir de su próxima fecha de facturación.",
        "Por favor, espere unos minutos para que aparezca la actualización.",
        "He enviado su consulta al equipo que se encarga de ello.",
    ],
    "ru": [
        "Спасибо, что обратились к нам по этому вопросу.",
        "Я проверил ваш аккаунт и детали вашего запроса.",
        "Двойное списание будет возвращено в течение пяти рабочих дней.",
        "Вы можете изменить это в любое время на странице настроек.",
        "Ваш заказ покинул наш склад и уже в пути.",
        "Если что-то осталось неясным, просто ответьте на это сообщение.",
        "Приносим извинения за доставленные неудобства.",
        "Изменение вступит в силу со следующей даты списания.",
        "Пожалуйста, подождите несколько минут, пока обновление появится.",
        "Я передал ваш вопрос команде, которая этим занимается.",
    ],
    "zh": [
        "感谢您就此事与我们联系。",
        "我已经核实了您的账户和请求的详细信息。",
        "重复扣款将在五个工作日内退还到您的账户。",
        "您可以随时在设置页面中更改此项。",
        "您的订单已经离开我们的仓库，正在运送途中。",
        "如果还有任何不清楚的地方，请直接回复此消息。",
        "对于给您带来的不便，我们深表歉意。",
        "此项更改将从您的下一个账单日期开始生效。",
        "请稍等几分钟，更新内容就会显示出来。",
        "我已经把您的问题转交给负责的团队处理。",
    ],
}
"""Support-answer sentences per language, written by hand."""

FORMS: Final = ("prose", "json", "code", "markdown")
LANGUAGES: Final = tuple(PROSE)
_STATUSES: Final = ("refund_issued", "in_transit", "updated", "escalated", "resolved")
_CODE: Final = (
    "def refund(order_id: str) -> Refund:",
    "    invoice = invoices.get(order_id)",
    "    if invoice is None:",
    "        raise NotFound(order_id)",
    "    amount = invoice.total - invoice.refunded",
    "    return payments.refund(invoice.card, amount)",
    "for item in order.items:",
    "    if item.damaged:",
    "        returns.append(item.sku)",
    "const eta = await tracking.lookup(orderId);",
    "if (eta.days > 5) { notify(user, eta); }",
)


def _pick(rng: np.random.Generator, choices: Sequence[str]) -> str:
    return choices[int(rng.integers(len(choices)))]


def questions(rng: np.random.Generator, n: int, topic: str = "billing") -> list[str]:
    """``n`` user questions on ``topic`` (see :data:`QUESTIONS`)."""
    templates, slots = QUESTIONS[topic]
    out = []
    for _ in range(n):
        template = _pick(rng, templates)
        values = {name: _pick(rng, words) for name, words in slots.items()}
        out.append(template.format(**values))
    return out


def _prose(rng: np.random.Generator, language: str, length: int) -> str:
    sentences = PROSE[language]
    parts: list[str] = []
    separator = "" if language == "zh" else " "
    while len(separator.join(parts)) < length:
        parts.append(_pick(rng, sentences))
    return separator.join(parts)


def _json(rng: np.random.Generator, length: int) -> str:
    fields = {
        "status": _pick(rng, _STATUSES),
        "ticket": f"T-{rng.integers(1000, 9999)}",
        "amount": round(float(rng.uniform(5, 200)), 2),
        "currency": _pick(rng, ("USD", "EUR", "GBP")),
        "eta_days": int(rng.integers(1, 9)),
        "agent": _pick(rng, ("billing", "shipping", "accounts")),
    }
    text = "{" + ", ".join(f'"{k}": {_value(v)}' for k, v in fields.items())
    notes: list[str] = []
    while len(text) + len(", ".join(notes)) < length:
        notes.append(f'"step {len(notes) + 1}"')
    return f'{text}, "notes": [{", ".join(notes)}]}}'


def _value(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def _code(rng: np.random.Generator, length: int) -> str:
    lines = ["```python"]
    while len("\n".join(lines)) < length:
        start = int(rng.integers(len(_CODE)))
        lines.extend(_CODE[start : start + 3])
    return "\n".join([*lines, "```"])


def _markdown(rng: np.random.Generator, language: str, length: int) -> str:
    sentences = PROSE[language]
    lines = ["## What happens next", ""]
    while len("\n".join(lines)) < length:
        sentence = _pick(rng, sentences)
        lines.append(f"{len(lines) - 1}. **Step:** {sentence}")
    return "\n".join(lines)


def answers(
    rng: np.random.Generator,
    n: int,
    form: str = "prose",
    language: str = "en",
    length: tuple[int, int] = (180, 320),
) -> list[str]:
    """``n`` answers in ``form`` (:data:`FORMS`) and ``language`` (:data:`LANGUAGES`), each
    about as long as a length drawn uniformly from ``length`` (same range: same lengths)."""
    out = []
    for _ in range(n):
        size = int(rng.integers(*length))
        if form == "prose":
            out.append(_prose(rng, language, size))
        elif form == "json":
            out.append(_json(rng, size))
        elif form == "code":
            out.append(_code(rng, size))
        elif form == "markdown":
            out.append(_markdown(rng, language, size))
        else:
            raise ValueError(f"unknown form {form!r}")
    return out


@dataclass(frozen=True)
class Mix:
    """What a cohort's calls ask and answer: topics by weight, the answers' form and language."""

    topics: tuple[tuple[str, float], ...] = (("billing", 0.5), ("shipping", 0.3), ("account", 0.2))
    form: str = "prose"
    language: str = "en"
    length: tuple[int, int] = (180, 320)

    def with_(self, **changes: Any) -> Mix:
        return replace(self, **changes)


HEALTHY: Final = Mix()


def sampled_texts(
    rng: np.random.Generator, n: int, mix: Mix = HEALTHY, chars: int = 256
) -> list[SampledText]:
    """``n`` sampled texts of ``mix``, cut to ``chars`` as the window's sample keeps them."""
    names = [t for t, _ in mix.topics]
    weights = np.array([w for _, w in mix.topics])
    picks = rng.choice(len(names), n, p=weights / weights.sum())
    asked = [questions(rng, 1, names[i])[0] for i in picks]
    said = answers(rng, n, mix.form, mix.language, mix.length)
    return [
        SampledText(q[:chars], a[:chars], len(q), len(a)) for q, a in zip(asked, said, strict=True)
    ]


def check_request(
    window: Sequence[SampledText],
    reference: Sequence[SampledText],
    settings: DriftSettings | None = None,
    examples: Sequence[tuple[str, bytes]] = (),
    index: int = 0,
) -> TextCheckRequest:
    """The request a drift detector would leave for these texts (window ``index``)."""
    return TextCheckRequest(
        cohort=COHORT,
        window=Window(60 * index, 60 * index + 60),
        current=(pack_texts(window),),
        reference=(pack_texts(reference),),
        settings=settings or DriftSettings(),
        chars=256,
        examples=tuple(examples),
        triggered=False,
    )


def text_stream(
    seed: int, windows: int, mix: Mix = HEALTHY, first: int = 0, events: int = 100
) -> list[Partial]:
    """``windows`` merged windows of one cohort whose ``events`` calls each carry texts of
    ``mix`` (and latencies, so that the numeric drift tier has something to read)."""
    rng = np.random.default_rng(seed)
    out = []
    for index in range(first, first + windows):
        partial = Partial.empty(COHORT, Window(60 * index, 60 * index + 60), "*")
        texts = sampled_texts(rng, events, mix)
        latencies = rng.lognormal(7, 0.4, events)
        for i, (text, latency) in enumerate(zip(texts, latencies, strict=True)):
            partial.add(
                Observation(
                    f"w{index}-{i}",
                    60.0 * index + i * 60 / events,
                    COHORT,
                    latency_ms=float(latency),
                    texts=functools.partial(_same, text),
                )
            )
        out.append(partial)
    return out


def _same(text: SampledText) -> SampledText:
    return text
