"""The demo catalogue of Maison Lavande: fashion, shoes, home linen, tableware and
decoration, with FR/EN texts from word lists, valid GTIN-13s and prices per channel.

Everything is drawn from `run.rng` in a fixed order, so a seed gives the same catalogue.
Products go in through the catalogue's bulk import path, like a merchant's file would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from parcours import catalog

if TYPE_CHECKING:
    from parcours.demo.generator import DemoRun

PRODUCTS_PER_SIZE = {"tiny": 60, "small": 300, "medium": 2_000, "large": 8_000}
GTIN_PREFIX = "376"  # within GS1 France's 300-379 range


@dataclass(frozen=True)
class Kind:
    """A kind of product: its category, names, price range (cents) and variant axes."""

    category: str
    fr: str
    en: str
    price: tuple[int, int]
    sizes: tuple[str, ...]
    colours_per_product: tuple[int, int]


KINDS = (
    Kind("robes", "Robe", "dress", (4_990, 14_990), ("XS", "S", "M", "L", "XL"), (1, 2)),
    Kind("chemises", "Chemise", "shirt", (3_990, 8_990), ("S", "M", "L", "XL"), (1, 2)),
    Kind("pulls", "Pull", "jumper", (4_990, 12_990), ("S", "M", "L", "XL"), (1, 2)),
    Kind("tshirts", "T-shirt", "T-shirt", (1_990, 3_990), ("XS", "S", "M", "L", "XL"), (1, 2)),
    Kind(
        "baskets",
        "Baskets",
        "trainers",
        (5_990, 12_990),
        ("37", "38", "39", "40", "41", "42", "43"),
        (1, 1),
    ),
    Kind(
        "bottines",
        "Bottines",
        "ankle boots",
        (8_990, 18_990),
        ("36", "37", "38", "39", "40", "41"),
        (1, 1),
    ),
    Kind("draps", "Drap", "sheet", (2_990, 7_990), ("140x190", "160x200", "180x200"), (1, 2)),
    Kind(
        "housses",
        "Housse de couette",
        "duvet cover",
        (4_990, 12_990),
        ("140x200", "240x220", "260x240"),
        (1, 2),
    ),
    Kind(
        "serviettes", "Serviette de bain", "bath towel", (990, 3_490), ("50x100", "70x140"), (2, 3)
    ),
    Kind("assiettes", "Assiette", "plate", (890, 2_490), (), (3, 5)),
    Kind("verres", "Verre", "glass", (590, 1_890), (), (2, 4)),
    Kind("bougies", "Bougie parfumée", "scented candle", (1_490, 3_990), (), (3, 5)),
    Kind("coussins", "Coussin", "cushion", (1_990, 4_990), ("40x40", "50x50"), (2, 3)),
    Kind("vases", "Vase", "vase", (1_990, 6_990), (), (2, 4)),
)
CATEGORIES = (
    ("mode", None, "Mode", "Fashion"),
    ("robes", "mode", "Robes", "Dresses"),
    ("chemises", "mode", "Chemises", "Shirts"),
    ("pulls", "mode", "Pulls", "Jumpers"),
    ("tshirts", "mode", "T-shirts", "T-shirts"),
    ("chaussures", None, "Chaussures", "Shoes"),
    ("baskets", "chaussures", "Baskets", "Trainers"),
    ("bottines", "chaussures", "Bottines", "Ankle boots"),
    ("linge", None, "Linge de maison", "Home linen"),
    ("draps", "linge", "Draps", "Sheets"),
    ("housses", "linge", "Housses de couette", "Duvet covers"),
    ("serviettes", "linge", "Serviettes", "Towels"),
    ("table", None, "Art de la table", "Tableware"),
    ("assiettes", "table", "Assiettes", "Plates"),
    ("verres", "table", "Verres", "Glasses"),
    ("deco", None, "Décoration", "Decoration"),
    ("bougies", "deco", "Bougies", "Candles"),
    ("coussins", "deco", "Coussins", "Cushions"),
    ("vases", "deco", "Vases", "Vases"),
)
BRANDS = (
    ("lavande", "Maison Lavande"),
    ("garance", "Atelier Garance"),
    ("toiles-sud", "Les Toiles du Sud"),
    ("ceramiques", "Céramiques de Provence"),
    ("pas-de-loup", "Pas de Loup"),
)
MATERIALS = (
    ("en lin", "linen"),
    ("en coton bio", "organic cotton"),
    ("en laine mérinos", "merino wool"),
    ("en soie", "silk"),
    ("en grès", "stoneware"),
    ("en porcelaine", "porcelain"),
    ("en verre soufflé", "blown-glass"),
    ("en cuir", "leather"),
    ("en velours", "velvet"),
    ("en gaze de coton", "cotton gauze"),
)
STYLES = (
    ("Camargue", "Camargue"),
    ("Luberon", "Luberon"),
    ("Riviera", "Riviera"),
    ("Valensole", "Valensole"),
    ("Alpilles", "Alpilles"),
    ("Calanque", "Calanque"),
    ("Ventoux", "Ventoux"),
    ("Estérel", "Esterel"),
    ("Verdon", "Verdon"),
    ("Mistral", "Mistral"),
)
COLOURS = (
    ("lavande", "lavender"),
    ("écru", "ecru"),
    ("terracotta", "terracotta"),
    ("olive", "olive"),
    ("bleu nuit", "midnight blue"),
    ("sable", "sand"),
    ("rose poudré", "dusty pink"),
    ("blanc", "white"),
    ("noir", "black"),
    ("moutarde", "mustard"),
)
CHANNELS: tuple[dict[str, Any], ...] = (
    {
        "code": "web",
        "name": "Boutique en ligne",
        "kind": "web",
        "locales": ["fr", "en"],
        "storefront_url": "https://www.maison-lavande.example",
        "required_attributes": {
            "fr": ["name", "description", "price", "gtin"],
            "en": ["name", "description", "price"],
        },
    },
    {"code": "app", "name": "Application", "kind": "app", "locales": ["fr", "en"]},
    {"code": "store", "name": "Magasins", "kind": "store", "locales": ["fr"]},
    {"code": "call_centre", "name": "Service client", "kind": "call_centre", "locales": ["fr"]},
    {
        "code": "marketplace",
        "name": "Place de marché",
        "kind": "marketplace",
        "locales": ["fr"],
        "required_attributes": {"fr": ["name", "description", "price", "gtin"]},
    },
)
MARKETPLACE_UPLIFT = 1.06  # marketplace commissions are passed on, slightly


# Product photos as the retailer's media server would serve them (not shipped with the demo).
MEDIA_BASE = "https://media.maison-lavande.example/produits"


def _reference_data(run: DemoRun) -> None:
    with run.db.transaction() as session:
        for code, name in BRANDS:
            catalog.add_brand(session, code, name)
        for code, parent, fr, en in CATEGORIES:
            catalog.add_category(session, code, fr, en, parent)
        for channel in CHANNELS:
            catalog.add_channel(session, run.now, channel)
        # The marketplace is allowed its uplift (rounded to 10 cents) by the one-voice rules.
        catalog.set_voice_rule(
            session,
            run.now,
            catalog.VoiceRule(
                "marketplace", "web", price_tolerance_bp=700, price_tolerance_cents=10
            ),
        )


def _price(rng: random.Random, low: int, high: int) -> int:
    euros = rng.randrange(low // 100, high // 100 + 1)
    cents: int = rng.choice((0, 90, 90, 99))
    return euros * 100 + cents


def _product_rows(run: DemoRun, index: int, gtin_counter: list[int]) -> list[dict[str, Any]]:
    rng = run.rng
    kind = KINDS[index % len(KINDS)]
    material_fr, material_en = rng.choice(MATERIALS)
    style_fr, style_en = rng.choice(STYLES)
    brand = BRANDS[0][0] if rng.random() < 0.5 else rng.choice(BRANDS)[0]
    code = f"ML-{index + 1:05d}"
    name_fr = f"{kind.fr} {style_fr} {material_fr}"
    name_en = f"{style_en} {material_en} {kind.en}"
    description_fr = (
        f"{kind.fr} de la collection {style_fr}, {material_fr}, "
        "dessiné en Provence et fabriqué avec soin."
    )
    description_en = (
        f"A {material_en} {kind.en} from the {style_en} collection, designed in Provence."
        if rng.random() > 0.05
        else ""  # a few English texts still missing: completeness shows them
    )
    images = "|".join(f"{MEDIA_BASE}/{code.lower()}-{n}.jpg" for n in (1, 2))
    base = _price(rng, *kind.price)
    colours = rng.sample(COLOURS, rng.randint(*kind.colours_per_product))
    sizes = kind.sizes or ("",)
    rows = []
    for colour_fr, _colour_en in colours:
        for size in sizes:
            gtin_counter[0] += 1
            options = {"colour": colour_fr, **({"size": size} if size else {})}
            suffix = f"{_initials(colour_fr)}{'-' + size if size else ''}"
            rows.append(
                {
                    "product_code": code,
                    "brand": brand,
                    "category": kind.category,
                    "vat_rate": "20",
                    "name_fr": name_fr,
                    "name_en": name_en,
                    "description_fr": description_fr,
                    "description_en": description_en,
                    "image_urls": images,
                    "sku": f"{code}-{suffix}",
                    "gtin": catalog.make_gtin13(f"{GTIN_PREFIX}{gtin_counter[0]:09d}"),
                    "options": options,
                    "price_web": base,
                    "price_app": base,
                    "price_store": base,
                    "price_call_centre": base,
                    "price_marketplace": round(base * MARKETPLACE_UPLIFT / 10) * 10,
                }
            )
    return rows


def _initials(colour: str) -> str:
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", colour).encode("ascii", "ignore").decode()
    return "".join(word[:3] for word in ascii_text.upper().split())


def generate_catalog(run: DemoRun) -> None:
    """Brands, categories, channels, then products with variants and prices (bulk),
    listings on every channel, and a few sales on the web shop."""
    _reference_data(run)
    count = PRODUCTS_PER_SIZE[run.size_name]
    counter = [0]
    rows = [row for index in range(count) for row in _product_rows(run, index, counter)]
    numbered = list(enumerate(rows, start=1))
    with run.db.transaction() as session:
        report = catalog.import_rows(
            session,
            run.now,
            numbered,
            progress=lambda done, total: run.progress("catalog", done, total),
        )
    listings = []
    codes = list(dict.fromkeys(row["product_code"] for row in rows))
    for code in codes:
        upcoming = run.rng.random() < 0.03
        for channel in ("web", "app", "store", "call_centre", "marketplace"):
            if channel == "marketplace" and run.rng.random() < 0.4:
                continue
            listings.append(
                {
                    "product_code": code,
                    "channel": channel,
                    "published": True,
                    "visible_from": run.now + timedelta(days=14) if upcoming else None,
                    "visible_to": None,
                }
            )
    on_sale = [row for row in rows if run.rng.random() < 0.05]
    with run.db.transaction() as session:
        catalog.add_listings(session, run.now, listings)
        for row in on_sale:
            catalog.set_price(
                session,
                run.now,
                row["sku"],
                "web",
                row["price_web"],
                sale_amount=row["price_web"] * 7 // 10 // 10 * 10,
                sale_from=run.now - timedelta(days=3),
                sale_to=run.now + timedelta(days=11),
            )
    run.skus = [row["sku"] for row in rows]
    run.products = [
        {
            "sku": row["sku"],
            "product_id": row["product_code"],
            "category": row["category"],
            "name": row["name_fr"],
            "price": row["price_store"],
        }
        for row in rows
    ]
    run.counts["products"] = report.products
    run.counts["variants"] = report.variants
    run.counts["prices"] = report.prices + len(on_sale)
    run.counts["listings"] = len(listings)
