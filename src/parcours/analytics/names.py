"""Names the insight commands, pages and API show before any computation: the engines,
the attribution models and the fields of a sales history file.

Kept apart from the modules that compute (Ibis, numpy, scipy, pandas, pyarrow) so that
reading them, e.g. for a command's `--help`, imports none of those libraries.
"""

from __future__ import annotations

from typing import Final

#: Where the metrics run (see `engines`).
ENGINES: Final = ("live", "duckdb", "spark")

#: Attribution models by name (see `attribution.attribute`).
MODELS: Final = ("first", "last", "linear", "time_decay", "position", "markov", "shapley")
#: Highest Markov chain order.
MAX_ORDER: Final = 4

#: What each row of a sales history file may hold (see `transactions`).
TRANSACTION_FIELDS: Final = {
    "invoice": "invoice or receipt number (required); a leading C marks a credit note",
    "sku": "product SKU (required)",
    "description": "product name, used for SKUs not in the catalogue",
    "quantity": "units, a whole number (required); negative for a return",
    "unit_price": "price of one unit, VAT included, in currency units (e.g. 12.90)",
    "line_total": "amount of the line, VAT included, in currency units (instead of unit_price)",
    "date": "when it was sold (required), ISO 8601; without a zone it is taken as UTC",
    "customer": "customer number (created if unknown)",
    "store": "store code (must exist); absent for web sales",
    "country": "two-letter country of new customers",
    "channel": "web, app, store, call_centre, marketplace or social (default: store when "
    "a store is given, else web)",
}
#: Source name of imported orders when none is given.
DEFAULT_SOURCE: Final = "import"
