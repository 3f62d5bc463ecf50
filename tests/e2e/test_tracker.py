"""The first-party web tracker, in Chromium, on a shop page of another origin."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from parcours.core.clock import ManualClock
from parcours.core.db import Database
from parcours.customers.models import TrackedEvent
from tests import builders

pytestmark = pytest.mark.e2e

SNIPPET = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Robes en lin</title>
<script>
window.parcours = window.parcours || [];
["page", "track", "identify", "reset"].forEach(function (m) {
  window.parcours[m] = window.parcours[m] || function () {
    window.parcours.push([m].concat([].slice.call(arguments)));
  };
});
parcours.track("Snippet Loaded", {queued: true});
</script>
<script async src="API/v1/parcours.js" data-write-key="KEY"></script>
</head><body><h1>Robes en lin</h1></body></html>
"""


@pytest.fixture
def shop_site() -> Iterator[Callable[[str], str]]:
    """A retailer's site on its own origin (a real loopback server, as browsers refuse
    pages of no address to call loopback ones): `publish(html)` gives its URL."""
    pages: dict[str, bytes] = {}

    class Shop(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body else 204)  # 204: no favicon
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def publish(html: str) -> str:
        pages["/boutique/robes"] = html.encode()
        return f"http://localhost:{server.server_address[1]}/boutique/robes"

    yield publish
    server.shutdown()
    thread.join(timeout=10)


def test_the_tracker_sends_page_views_tracks_and_identifies_with_one_anonymous_id(
    live_server: str,
    browser: Any,
    sqlite_db: Database,
    clock: ManualClock,
    shop_site: Callable[[str], str],
) -> None:
    key = builders.api_key(sqlite_db, clock, kind="write")
    # The shop is another origin than Parcours: the tracker posts cross-origin.
    shop = shop_site(SNIPPET.replace("API", live_server).replace("KEY", key))
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(shop)
    page.wait_for_function("window.parcours && window.parcours.loaded === true")
    answers = page.evaluate(
        """() => {
        parcours.track("Product Viewed", {sku: "ROBE-LIN-S", price: 89});
        parcours.identify("u-42", {email: "lea.martin@example.com"});
        parcours.track("Product Added", {sku: "ROBE-LIN-S"});
        return parcours.flush();
    }"""
    )
    assert all(answer["rejected"] == [] for answer in answers)
    cookie = next(c for c in context.cookies(shop) if c["name"] == "prc_aid")
    assert cookie["sameSite"] == "Lax"
    assert page.evaluate("parcours.anonymousId()") == cookie["value"]

    with sqlite_db.transaction() as session:
        rows = list(
            session.scalars(
                select(TrackedEvent)
                .where(TrackedEvent.anonymous_id == cookie["value"])
                .order_by(TrackedEvent.timestamp, TrackedEvent.seq)
            )
        )
    seen = [(row.type, row.event, row.user_id) for row in rows]
    assert sorted(seen, key=str) == sorted(
        [
            ("page", None, None),
            ("track", "Snippet Loaded", None),
            ("track", "Product Viewed", None),
            ("identify", None, "u-42"),
            ("track", "Product Added", "u-42"),
        ],
        key=str,
    )
    page_view = next(row for row in rows if row.type == "page")
    assert page_view.channel == "web"
    assert page_view.context is not None
    assert page_view.context["page"]["path"] == "/boutique/robes"
    assert page_view.context["page"]["title"] == "Robes en lin"
    identify = next(row for row in rows if row.type == "identify")
    assert identify.traits == {"email": "lea.martin@example.com"}

    # A second page of the same visit keeps the visitor's ids.
    page.goto(shop)
    page.wait_for_function("window.parcours && window.parcours.loaded === true")
    assert page.evaluate("parcours.anonymousId()") == cookie["value"]
    assert page.evaluate("parcours.userId()") == "u-42"
    assert errors == []
    context.close()
