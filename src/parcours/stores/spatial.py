"""The locator's spatial index: every active store as a unit vector, in memory.

For the k nearest of n stores, one n x 3 matrix-vector product gives the cosine of each
store's angular distance, and `argpartition` picks the k largest: exact great-circle
ranking in tens of microseconds for 10,000 stores, with no widening search that slows
down in empty countryside. The index is rebuilt when `store_network_version` (bumped in
the same transaction as any store change) differs from the one it was built from, so
every process, server or worker, sees committed changes on its next query.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from parcours.core.geo import EARTH_RADIUS_KM, GeoPoint
from parcours.stores.models import Store, StoreNetworkVersion

NETWORK_ROW = 1


class StoreHit(NamedTuple):
    """A store found by the index (the details come from the database)."""

    id: uuid.UUID
    code: str


@dataclass(frozen=True)
class StoreIndex:
    version: int
    hits: list[StoreHit]
    vectors: npt.NDArray[np.float64]  # (n, 3) unit vectors
    by_service: dict[str, npt.NDArray[np.bool_]]

    def nearest(
        self, centre: GeoPoint, limit: int, service: str | None
    ) -> list[tuple[float, StoreHit]]:
        """The `limit` nearest stores (offering `service`) as (km, hit), nearest first."""
        if not self.hits:
            return []
        cosines = self.vectors @ _unit_vector(centre.lat, centre.lon)
        if service is not None:
            mask = self.by_service.get(service)
            if mask is None:
                return []
            cosines = np.where(mask, cosines, -np.inf)
        count = min(limit, int(np.count_nonzero(np.isfinite(cosines))))
        if count == 0:
            return []
        best = np.argpartition(-cosines, count - 1)[:count]
        best = best[np.argsort(-cosines[best], kind="stable")]
        angles = np.arccos(np.clip(cosines[best], -1.0, 1.0))
        return [
            (float(EARTH_RADIUS_KM * a), self.hits[i]) for a, i in zip(angles, best, strict=True)
        ]


def _unit_vector(lat: float, lon: float) -> npt.NDArray[np.float64]:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.array([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def _unit_vectors(
    lats: npt.NDArray[np.float64], lons: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    phi, lam = np.radians(lats), np.radians(lons)
    return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


_indexes: dict[str, StoreIndex] = {}
_lock = threading.Lock()


def network_version(session: Session) -> int:
    """The store network's version token: it changes in the transaction of any store
    change (0 before the first), so caches of store ids or places can check it."""
    return (
        session.scalar(
            select(StoreNetworkVersion.version).where(StoreNetworkVersion.id == NETWORK_ROW)
        )
        or 0
    )


def network_changed(session: Session) -> None:
    """Record, in the caller's transaction, that stores moved, opened, closed or changed.

    The version is a fresh random token rather than a counter, so two databases (or a
    restored backup) can never be mistaken for one another by a process's cache.
    """
    token = secrets.randbits(62) + 1
    bumped = session.execute(
        update(StoreNetworkVersion)
        .where(StoreNetworkVersion.id == NETWORK_ROW)
        .values(version=token)
    )
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        session.add(StoreNetworkVersion(id=NETWORK_ROW, version=token))
        session.flush()


def store_index(session: Session) -> StoreIndex:
    """The index for this database, rebuilt when the store network has changed."""
    key = str(session.get_bind().engine.url)
    version = network_version(session)
    current = _indexes.get(key)
    if current is not None and current.version == version:
        return current
    with _lock:
        rebuilt = _build(session, version)
        _indexes[key] = rebuilt
    return rebuilt


def _build(session: Session, version: int) -> StoreIndex:
    rows = session.execute(
        select(Store.id, Store.code, Store.lat, Store.lon, Store.services)
        .where(Store.active.is_(True), Store.kind == "store")
        .order_by(Store.code)
    ).all()
    hits = [StoreHit(row.id, row.code) for row in rows]
    lats = np.array([row.lat for row in rows], dtype=np.float64)
    lons = np.array([row.lon for row in rows], dtype=np.float64)
    services = {service for row in rows for service in (row.services or [])}
    by_service = {
        service: np.array([service in (row.services or []) for row in rows], dtype=bool)
        for service in services
    }
    vectors = _unit_vectors(lats, lons) if rows else np.zeros((0, 3))
    return StoreIndex(version, hits, vectors, by_service)
