"""The ready-made journeys, with the FR/EN templates (engagement), promotions (loyalty)
and segment (segments) they use. Installing twice changes nothing: what exists is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from parcours import engagement, loyalty, segments
from parcours.core.audit import Actor
from parcours.core.errors import NotFound
from parcours.journeys.models import Journey
from parcours.journeys.service import create_journey, set_status

_HELLO_FR = "Bonjour {{ customer.first_name }},"
_HELLO_EN = "Hello {{ customer.first_name }},"
_STORE_FR = "{% if store %}Votre magasin : {{ store.name }} ({{ store.open_today }}).{% endif %}"
_STORE_EN = "{% if store %}Your store: {{ store.name }} ({{ store.open_today }}).{% endif %}"
_ITEMS_FR = (
    "{% if cart %}{% for item in cart['items'] %}- {{ item['name'] }} × {{ item['quantity'] }}"
    "{% if item['stock_at_store'] is not none %} ({{ item['stock_at_store'] }} en stock dans "
    "votre magasin){% endif %}\n{% endfor %}{% endif %}"
)
_ITEMS_EN = (
    "{% if cart %}{% for item in cart['items'] %}- {{ item['name'] }} × {{ item['quantity'] }}"
    "{% if item['stock_at_store'] is not none %} ({{ item['stock_at_store'] }} in stock at "
    "your store){% endif %}\n{% endfor %}{% endif %}"
)


def _email(subject_fr: str, subject_en: str, body_fr: str, body_en: str) -> dict[str, str]:
    text_fr = f"{_HELLO_FR}\n\n{body_fr}\n\n{_STORE_FR}"
    text_en = f"{_HELLO_EN}\n\n{body_en}\n\n{_STORE_EN}"
    return {
        "subject_fr": subject_fr,
        "subject_en": subject_en,
        "text_fr": text_fr,
        "text_en": text_en,
        "html_fr": "<pre>" + text_fr + "</pre>",
        "html_en": "<pre>" + text_en + "</pre>",
    }


TEMPLATES: dict[str, tuple[str, dict[str, str]]] = {
    "abandoned-cart": ("email", _email(
        "Votre panier vous attend", "Your basket is waiting",
        "Vous avez laissé ces articles dans votre panier :\n" + _ITEMS_FR,
        "You left these items in your basket:\n" + _ITEMS_EN,
    )),
    "birthday": ("email", _email(
        "Joyeux anniversaire !", "Happy birthday!",
        "Pour fêter ça, voici votre code personnel : {{ promo_code }} (valable 30 jours).",
        "To celebrate, here is your personal code: {{ promo_code }} (valid for 30 days).",
    )),
    "satisfaction-survey": ("email", _email(
        "Votre avis compte", "Tell us what you think",
        "Êtes-vous satisfait de votre dernier achat ? Répondez en deux minutes.",
        "Are you happy with your last purchase? Answer in two minutes.",
    )),
    "back-in-stock": ("email", _email(
        "De retour dans votre magasin", "Back in your store",
        "Bonne nouvelle : il est de nouveau disponible.\n" + _ITEMS_FR,
        "Good news: it is available again.\n" + _ITEMS_EN,
    )),
    "drive-to-store": ("sms", {
        "text_fr": "{{ customer.first_name }}, vous êtes près de {% if store %}{{ store.name }}"
        "{% else %}notre magasin{% endif %} : -10 % aujourd'hui en magasin.",
        "text_en": "{{ customer.first_name }}, you are near {% if store %}{{ store.name }}"
        "{% else %}our store{% endif %}: 10% off in store today.",
    }),
    "welcome": ("email", _email(
        "Bienvenue !", "Welcome!",
        "Merci de nous avoir rejoints. Votre code de bienvenue : {{ promo_code }}.",
        "Thank you for joining us. Your welcome code: {{ promo_code }}.",
    )),
    "tier-upgrade": ("email", _email(
        "Vous passez au palier supérieur", "You moved up a tier",
        "Merci de votre fidélité : vos achats vous font passer au palier supérieur de notre "
        "programme. Vos nouveaux avantages valent en ligne comme en magasin.",
        "Thank you for your loyalty: your purchases move you up a tier in our programme. "
        "Your new benefits apply online and in store alike.",
    )),
    "win-back": ("email", _email(
        "Vous nous manquez", "We miss you",
        "Voici {{ promo_code }} pour votre prochain achat.",
        "Here is {{ promo_code }} for your next purchase.",
    )),
    "win-back-reminder": ("email", _email(
        "Votre code expire bientôt", "Your code expires soon",
        "N'oubliez pas votre code {{ promo_code }}.",
        "Do not forget your code {{ promo_code }}.",
    )),
}  # fmt: skip

PROMOTIONS: dict[str, dict[str, Any]] = {
    "birthday-gift": {"name_fr": "Cadeau d'anniversaire", "name_en": "Birthday gift",
                      "kind": "percent_off", "percent_bp": 1500},
    "welcome-10": {"name_fr": "Bienvenue -10 %", "name_en": "Welcome 10% off",
                   "kind": "percent_off", "percent_bp": 1000},
    "win-back-15": {"name_fr": "Retour -15 %", "name_en": "Come back 15% off",
                    "kind": "percent_off", "percent_bp": 1500},
}  # fmt: skip

WIN_BACK_SEGMENT = "no-purchase-180-days"
SEGMENT_DEFINITION = {
    "all": [
        {"kind": "trait", "field": "last_purchase_at", "operator": "more_than_days_ago",
         "value": 180}
    ]
}  # fmt: skip


def _send(step_id: str, template: str, **more: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "send", "template": template, **more}


JOURNEYS: dict[str, tuple[str, dict[str, Any]]] = {
    "abandoned-cart": ("Panier abandonné / Abandoned cart", {
        "trigger": {"type": "event", "event": "Product Added"},
        "steps": [
            {"id": "wait-1h", "type": "wait", "hours": 1, "next": "cart-open"},
            {"id": "cart-open", "type": "condition", "if": {"kind": "cart_open"},
             "yes": "send-reminder", "no": "cart-empty"},
            _send("send-reminder", "abandoned-cart", with_cart=True),
            {"id": "cart-empty", "type": "exit", "reason": "cart emptied"},
        ],
        "exit": [{"event": "Order Completed"}],
        "reentry": {"mode": "after_days", "days": 1},
    }),
    "birthday": ("Anniversaire / Birthday", {
        "trigger": {"type": "date_trait", "trait": "birth_date", "days_before": 0,
                    "at_local_time": "09:00"},
        "steps": [
            {"id": "code", "type": "promo_code", "promotion": "birthday-gift",
             "valid_days": 30, "next": "send-wishes"},
            _send("send-wishes", "birthday"),
        ],
        "reentry": {"mode": "always"},
    }),
    "post-purchase-survey": ("Enquête de satisfaction / Satisfaction survey", {
        "trigger": {"type": "event", "event": "Order Completed"},
        "steps": [
            {"id": "wait-7d", "type": "wait", "days": 7, "next": "send-survey"},
            _send("send-survey", "satisfaction-survey"),
        ],
        "reentry": {"mode": "after_days", "days": 30},
    }),
    "back-in-stock": ("De retour en stock / Back in stock", {
        "trigger": {"type": "back_in_stock", "viewed_within_days": 30},
        "steps": [_send("send-news", "back-in-stock", with_product=True)],
        "reentry": {"mode": "always"},
    }),
    "drive-to-store": ("Venez en magasin / Drive to store", {
        "trigger": {"type": "geo_entered", "event": "Location Updated", "radius_km": 1},
        "steps": [
            {"id": "sms-consent", "type": "condition",
             "if": {"kind": "consent", "purpose": "marketing", "channel": "sms"},
             "yes": "send-offer"},
            _send("send-offer", "drive-to-store"),
        ],
        "reentry": {"mode": "after_days", "days": 7},
    }),
    "welcome": ("Bienvenue / Welcome", {
        "trigger": {"type": "event", "event": "identify"},
        "steps": [
            {"id": "can-email", "type": "condition", "if": {"kind": "all", "conditions": [
                {"kind": "trait", "field": "email", "operator": "exists"},
                {"kind": "consent", "purpose": "marketing", "channel": "email"}]},
             "yes": "code"},
            {"id": "code", "type": "promo_code", "promotion": "welcome-10", "valid_days": 30,
             "next": "send-welcome"},
            _send("send-welcome", "welcome"),
        ],
        "reentry": {"mode": "never"},
    }),
    "tier-upgrade": ("Palier supérieur / Tier upgrade", {
        "trigger": {"type": "event", "event": "Loyalty Tier Changed",
                    "properties": {"direction": "up"}},
        "steps": [_send("send-congrats", "tier-upgrade")],
        "reentry": {"mode": "always"},
    }),
    "win-back": ("Reconquête / Win-back", {
        "trigger": {"type": "segment_entered", "segment": WIN_BACK_SEGMENT},
        "steps": [
            {"id": "code", "type": "promo_code", "promotion": "win-back-15", "valid_days": 30,
             "next": "send-offer"},
            _send("send-offer", "win-back", next="wait-order"),
            {"id": "wait-order", "type": "wait", "until_event": "Order Completed", "days": 7,
             "on_timeout": "send-reminder"},
            _send("send-reminder", "win-back-reminder"),
        ],
        "exit": [{"segment_exited": WIN_BACK_SEGMENT}],
        "reentry": {"mode": "after_days", "days": 180},
    }),
}  # fmt: skip


@dataclass
class Installed:
    """What an installation created (the rest existed already)."""

    journeys: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)
    promotions: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)


def _templates(session: Session, now: datetime, actor: Actor, done: Installed) -> None:
    for key, (channel, content) in TEMPLATES.items():
        try:
            engagement.get_template(session, key)
            continue
        except NotFound:
            pass
        engagement.save_template(
            session, now, engagement.TemplateInput(key, channel, "marketing", content),
            actor.label,
        )  # fmt: skip
        done.templates.append(key)


def _promotions(session: Session, now: datetime, done: Installed) -> None:
    for key, data in PROMOTIONS.items():
        if loyalty.has_promotion(session, key):
            continue
        loyalty.add_promotion(session, now, {"key": key, **data})
        done.promotions.append(key)


def _segment(session: Session, now: datetime, actor: Actor, done: Installed) -> None:
    try:
        segments.find_segment(session, WIN_BACK_SEGMENT)
        return
    except NotFound:
        pass
    name = "Sans achat depuis 180 jours / No purchase in 180 days"
    segments.create_segment(session, now, actor, WIN_BACK_SEGMENT, name, SEGMENT_DEFINITION)
    done.segments.append(WIN_BACK_SEGMENT)


def install_ready_made(
    session: Session, now: datetime, actor: Actor, *, activate: bool = False,
    only: list[str] | None = None,
) -> Installed:  # fmt: skip
    """Install the ready-made journeys (all, or `only` these keys) with what they use;
    `activate` switches on the ones it creates (else they stay in draft)."""
    done = Installed()
    _templates(session, now, actor, done)
    _promotions(session, now, done)
    _segment(session, now, actor, done)
    existing = set(session.scalars(select(Journey.key)))
    for key, (name, definition) in JOURNEYS.items():
        if key in existing or (only is not None and key not in only):
            continue
        create_journey(session, now, actor, key, name, definition)
        if activate:
            set_status(session, now, actor, key, "active")
        done.journeys.append(key)
    return done
