"""API shapes of probabilistic matching: runs, proposed pairs, decisions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from parcours.customers.matching import Candidate, RunRequest

# The fields of `matching_records.FIELDS`, spelt out for the OpenAPI document.
MatchField = Literal[
    "first_name", "last_name", "birth_date", "address", "postcode", "city", "phone", "email"
]


class RunIn(BaseModel):
    """A matching run: two sources (or neither, for every profile) and thresholds."""

    model_config = ConfigDict(extra="forbid")

    source_a: str | None = Field(None, max_length=64, examples=["import:pos"])
    source_b: str | None = Field(None, max_length=64, examples=["web"])
    lower: float = Field(0.5, gt=0, le=1, description="pairs from this probability are proposed")
    upper: float = Field(0.95, gt=0, le=1, description="pairs from this probability are sure")
    auto_merge: bool = Field(False, description="merge the sure pairs without review")
    engine: Literal["duckdb", "spark"] = "duckdb"
    blocking: list[list[MatchField]] | None = Field(
        None, description="rules of fields that must agree; default: pairs of personal fields"
    )
    training: Literal["auto", "em", "priors"] = "auto"
    seed: int = Field(42, ge=0)

    def request(self) -> RunRequest:
        return RunRequest(
            source_a=self.source_a,
            source_b=self.source_b,
            lower=self.lower,
            upper=self.upper,
            auto_merge=self.auto_merge,
            engine=self.engine,
            blocking=tuple(tuple(rule) for rule in self.blocking) if self.blocking else None,
            training=self.training,
            seed=self.seed,
        )


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    started_at: datetime
    actor: str
    source_a: str | None
    source_b: str | None
    engine: str
    lower_threshold: float
    upper_threshold: float
    auto_merge: bool
    blocking: list[list[str]]
    fields: list[str]
    seed: int
    trained: bool = Field(description="weights learnt from the data (else prior weights)")
    profiles_a: int
    profiles_b: int
    pairs_found: int = Field(description="pairs at or above the lower threshold")
    pairs_known: int = Field(description="of which proposed by an earlier run: skipped")
    queued: int
    merged: int
    merge_refused: int = Field(description="sure pairs the identity rules refused to merge")
    seconds: float


class RunList(BaseModel):
    items: list[RunOut]


class ProfileOut(BaseModel):
    id: uuid.UUID
    first_name: str | None = None
    last_name: str | None = None
    birth_date: str | None = None
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    phone: str | None = None
    email: str | None = None


class PairOut(BaseModel):
    id: uuid.UUID
    run_id: uuid.UUID
    probability: float
    agreement: dict[str, Literal["exact", "close", "different", "missing"]] = Field(
        description="per compared field"
    )
    status: Literal["pending", "accepted", "rejected", "merged"]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    merge_id: uuid.UUID | None
    profile_a: ProfileOut = Field(description="the older profile: kept when merged")
    profile_b: ProfileOut

    @classmethod
    def of(cls, candidate: Candidate) -> PairOut:
        return cls.model_validate(
            {
                "id": candidate.id,
                "run_id": candidate.run_id,
                "probability": candidate.probability,
                "agreement": candidate.agreement,
                "status": candidate.status,
                "created_at": candidate.created_at,
                "decided_at": candidate.decided_at,
                "decided_by": candidate.decided_by,
                "merge_id": candidate.merge_id,
                "profile_a": {"id": candidate.a.id, **candidate.a.values},
                "profile_b": {"id": candidate.b.id, **candidate.b.values},
            }
        )


class PairPage(BaseModel):
    items: list[PairOut]
    next_cursor: str | None
