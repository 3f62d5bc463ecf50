"""Demo step: the marketing side of the retailer, as it stands today.

Loyalty points for the two years of orders, promotions (one automatic, some by code)
with a batch of printed single-use codes, segments a marketer would keep (champions,
dress lovers who have not bought, people near the first store...; the win-back journey
adds lapsed customers), two past campaigns sent through the real send path (consent,
caps and quiet hours apply, messages land as `.eml` files in the data folder) with an A/B
test and a holdout group, read and clicked by some, and the ready-made journeys switched
on, with a few baskets left this morning so that the abandoned-cart journey has people
waiting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from parcours import customers, engagement, journeys, loyalty, segments
from parcours.core.audit import CLI_ACTOR
from parcours.core.clock import ManualClock
from parcours.core.mail import Mailer, OutgoingEmail
from parcours.core.settings import get_settings

if TYPE_CHECKING:
    from parcours.demo.generator import DemoRun

HISTORY = timedelta(days=730)
_PIXEL = re.compile(r'/m/o/([^"/]+)\.gif"')
_CLICK = re.compile(r'href="[^"]*/m/c/([^"]+)"')
PRINTED_CODES = 200

PROMOTIONS: list[dict[str, Any]] = [
    {"key": "bougies-3-pour-2", "name_fr": "3 bougies pour le prix de 2",
     "name_en": "3 candles for the price of 2", "kind": "buy_x_get_y", "buy_quantity": 2,
     "get_quantity": 1, "group_by": "category", "categories": ["bougies"], "automatic": True},
    {"key": "bienvenue-10", "name_fr": "Bienvenue : -10 %", "name_en": "Welcome: 10% off",
     "kind": "percent_off", "percent_bp": 1000, "automatic": False},
    {"key": "linge-15", "name_fr": "Linge de maison : -15 €", "name_en": "Home linen: €15 off",
     "kind": "amount_off", "amount_off": 1500, "currency": "EUR", "categories": ["linge"],
     "min_subtotal": 6000, "automatic": False},
    {"key": "livraison-offerte", "name_fr": "Livraison offerte", "name_en": "Free delivery",
     "kind": "free_delivery", "channels": ["web", "app"], "automatic": False},
]  # fmt: skip

EMAIL_OPT_IN = {"kind": "consent", "purpose": "marketing", "channel": "email"}
SEGMENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("champions", "Champions (RFM)", {"kind": "rfm", "segment": "champions"}),
    ("a-risque", "Clients à risque / At risk", {"kind": "rfm", "segment": "at_risk"}),
    ("optin-email", "Inscrits à la newsletter / Email opt-in", EMAIL_OPT_IN),
    ("robes-sans-achat", "Regardent les robes sans acheter / Browse dresses, no purchase",
     {"all": [{"kind": "event", "name": "Product Viewed", "operator": "at_least", "value": 2,
               "within_days": 60, "where": [{"property": "category", "operator": "eq",
                                             "value": "robes"}]},
              {"not": {"kind": "order", "field": "count", "operator": "gte", "value": 1,
                       "within_days": 60, "category": "robes"}}]}),
    ("omnicanal", "Omnicanaux / Omnichannel",
     {"all": [{"kind": "order", "field": "count", "operator": "gte", "value": 1,
               "channel": "store"},
              {"any": [{"kind": "order", "field": "count", "operator": "gte", "value": 1,
                        "channel": "web"},
                       {"kind": "order", "field": "count", "operator": "gte", "value": 1,
                        "channel": "app"}]}]}),
    ("anniversaire-30j", "Anniversaire dans 30 jours / Birthday within 30 days",
     {"kind": "trait", "field": "birth_date", "operator": "birthday_in_days", "value": 30}),
    ("champions-optin", "Champions joignables par e-mail / Champions reachable by email",
     {"all": [{"kind": "segment", "segment": "champions"}, EMAIL_OPT_IN]}),
]  # fmt: skip

_LINK = '<p><a href="https://maison-lavande.example/{path}">{label}</a></p>'
TEMPLATES: dict[str, dict[str, str]] = {
    "soldes-hiver-a": {
        "subject_fr": "{{ customer.first_name }}, les soldes d'hiver commencent",
        "subject_en": "{{ customer.first_name }}, the winter sale starts",
        "text_fr": "Jusqu'à -40 % en ligne et en magasin.",
        "text_en": "Up to 40% off online and in store.",
        "html_fr": "<p>Jusqu'à -40 % en ligne et en magasin.</p>"
        + _LINK.format(path="soldes", label="Voir les soldes"),
        "html_en": "<p>Up to 40% off online and in store.</p>"
        + _LINK.format(path="sale", label="See the sale"),
    },
    "soldes-hiver-b": {
        "subject_fr": "Soldes : {% if store %}{{ store.name }}{% else %}votre magasin{% endif %}"
        " vous attend",
        "subject_en": "Sale: {% if store %}{{ store.name }}{% else %}your store{% endif %}"
        " is waiting",
        "text_fr": "Jusqu'à -40 %.{% if store %} Ouvert aujourd'hui : {{ store.open_today }}."
        "{% endif %}",
        "text_en": "Up to 40% off.{% if store %} Open today: {{ store.open_today }}.{% endif %}",
        "html_fr": "<p>Jusqu'à -40 %.</p>"
        + _LINK.format(path="magasins", label="Trouver mon magasin"),
        "html_en": "<p>Up to 40% off.</p>" + _LINK.format(path="stores", label="Find my store"),
    },
    "linge-printemps": {
        "subject_fr": "Le linge de maison de printemps est arrivé",
        "subject_en": "Spring home linen has arrived",
        "text_fr": "15 € offerts dès 60 € de linge de maison avec le code LINGE15.",
        "text_en": "€15 off €60 of home linen with the code LINGE15.",
        "html_fr": "<p>15 € offerts dès 60 € de linge de maison avec le code LINGE15.</p>"
        + _LINK.format(path="linge", label="Découvrir"),
        "html_en": "<p>€15 off €60 of home linen with the code LINGE15.</p>"
        + _LINK.format(path="linen", label="Discover"),
    },
}


def _outlets(run: DemoRun) -> engagement.Outlets:
    """The installation's outlets: e-mails as `.eml` files under the data folder unless
    an SMTP server is configured, SMS and push to the log."""
    return engagement.Outlets.from_settings(run.settings or get_settings())


def _loyalty(run: DemoRun) -> None:
    with run.db.transaction() as session:
        opened = run.now - HISTORY
        run.counts["points_orders"] = loyalty.credit_past_orders(session, run.now, opened)
        for promotion in PROMOTIONS:
            loyalty.add_promotion(session, run.now - timedelta(days=90), promotion)
        loyalty.add_shared_code(session, run.now, "linge-15", "LINGE15", per_customer_max=1)
        loyalty.generate_codes(
            session, run.now, "bienvenue-10", PRINTED_CODES, prefix="BV", valid_days=180
        )
    run.counts["promotions"] = len(PROMOTIONS)
    run.progress("activation", 1, 4)


def _segments(run: DemoRun) -> None:
    clock = ManualClock(run.now)
    customers.refresh_everyone(run.db, clock)  # RFM and recency for the segments
    first = next(s for s in run.stores if s["kind"] == "store")
    near = (
        "autour-" + first["code"].lower(),
        f"À 20 km de {first['name']} / Within 20 km of {first['name']}",
        {"kind": "geo", "store": first["code"], "radius_km": 20},
    )
    with run.db.transaction() as session:
        for key, name, definition in [*SEGMENTS, near]:
            segments.create_segment(session, run.now, CLI_ACTOR, key, name, definition)
    segments.refresh_all(run.db, clock)
    run.counts["segments"] = len(SEGMENTS) + 1
    run.progress("activation", 2, 4)


@dataclass
class _Readers:
    """The customers' mail clients: each message is stored by the installation's mailer
    (an `.eml` file, or SMTP) and kept, so that some readers open it and follow a link."""

    mailer: Mailer
    received: list[str] = field(default_factory=list)

    def send_email(self, message: OutgoingEmail) -> str:
        self.received.append(message.html or "")
        return self.mailer.send_email(message)


def _read(run: DemoRun, sent_at: datetime, received: list[str], appeal: float) -> None:
    """About `appeal` of the readers load the images (the open pixel), a third of them
    click the first link; through the same signed tokens as a real mail client."""
    with run.db.transaction() as session:
        for html in received:
            if run.rng.random() >= appeal:
                continue
            at = sent_at + timedelta(minutes=run.rng.randint(5, 3 * 24 * 60))
            opened = _PIXEL.search(html)
            if opened:
                engagement.record_open(session, at, opened.group(1))
            clicked = _CLICK.search(html)
            if clicked and run.rng.random() < 1 / 3:
                engagement.record_click(session, at + timedelta(minutes=1), clicked.group(1))


def _campaign(
    run: DemoRun, sent_at: datetime, data: engagement.CampaignInput, appeal: float
) -> None:
    clock = ManualClock(sent_at - timedelta(hours=1))
    with run.db.transaction() as session:
        engagement.create_campaign(session, clock.now(), CLI_ACTOR.label, data)
    outlets = _outlets(run)
    readers = _Readers(outlets.mailer)
    outlets = replace(outlets, mailer=readers)
    clock.advance(timedelta(hours=1))
    engagement.run_due(run.db, clock, outlets)
    clock.advance(timedelta(days=1))  # what quiet hours deferred goes out the next morning
    engagement.run_due(run.db, clock, outlets)
    _read(run, sent_at, readers.received, appeal)


def _campaigns(run: DemoRun) -> None:
    with run.db.transaction() as session:
        for key, content in TEMPLATES.items():
            engagement.save_template(
                session,
                run.now - timedelta(days=60),
                engagement.TemplateInput(key, "email", "marketing", content),
                CLI_ACTOR.label,
            )
    winter = (run.now - timedelta(days=40)).replace(hour=9)
    _campaign(run, winter, engagement.CampaignInput(
        name="Soldes d'hiver (A/B)", segment="optin-email", channel="email",
        variants=[engagement.Variant("A", "soldes-hiver-a", 50),
                  engagement.Variant("B", "soldes-hiver-b", 50)],
        holdout_percent=10, send_at=winter,
    ), appeal=0.32)  # fmt: skip
    spring = (run.now - timedelta(days=12)).replace(hour=10)
    _campaign(run, spring, engagement.CampaignInput(
        name="Linge de printemps", segment="champions-optin", channel="email",
        variants=[engagement.Variant("A", "linge-printemps", 100)], holdout_percent=20,
        send_at=spring,
    ), appeal=0.45)  # fmt: skip
    run.counts["campaigns"] = 2
    run.progress("activation", 3, 4)


def _journeys(run: DemoRun) -> None:
    with run.db.transaction() as session:
        installed = journeys.install_ready_made(session, run.now, CLI_ACTOR, activate=True)
    run.counts["journeys"] = len(installed.journeys)
    # This morning, some people left a basket: the abandoned-cart journey takes them in.
    shoppers = [c for c in run.customers if c.get("email")][:: max(1, len(run.customers) // 12)]
    messages: list[dict[str, Any]] = []
    for index, shopper in enumerate(shoppers):
        at = run.now - timedelta(minutes=30 + 7 * index)
        product = run.products[index % len(run.products)]
        user = f"demo-basket-{index}"
        messages.append({
            "type": "identify", "userId": user, "messageId": f"{user}-login",
            "timestamp": at.isoformat(), "context": {"channel": "web"},
            "traits": {"email": shopper["email"]},
        })  # fmt: skip
        messages.append({
            "type": "track", "event": "Product Added", "userId": user,
            "messageId": f"{user}-added", "timestamp": (at + timedelta(minutes=1)).isoformat(),
            "context": {"channel": "web"},
            "properties": {"sku": product["sku"], "name": product["name"], "quantity": 1,
                           "price": product["price"] / 100, "category": product["category"]},
        })  # fmt: skip
    with run.db.transaction() as session:
        customers.ingest_messages(session, run.now, messages)
    journeys.run_all(run.db, ManualClock(run.now), journeys.Actions(_outlets(run)))
    run.progress("activation", 4, 4)


def generate_activation(run: DemoRun) -> None:
    """Points, promotions and codes, segments, past campaigns, running journeys."""
    _loyalty(run)
    _segments(run)
    _campaigns(run)
    _journeys(run)
