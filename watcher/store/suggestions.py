"""Proposals of `watcher profile suggest`, kept so `watcher profile apply ID` applies what was shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select, update

from watcher.store.models import SuggestionRow


@dataclass(frozen=True, slots=True)
class StoredSuggestion:
    id: int
    profile: str
    base: str  # fingerprint of the profile the changes were measured on
    changes: list[dict[str, Any]]
    created: datetime
    applied: datetime | None


def save_suggestion(
    engine: Engine, profile: str, base: str, changes: list[dict[str, Any]], now: datetime
) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                SuggestionRow.__table__.insert()
                .values(profile=profile, base=base, changes=changes, created_at=now)
                .returning(SuggestionRow.id)
            ).scalar_one()
        )


def get_suggestion(engine: Engine, suggestion_id: int) -> StoredSuggestion | None:
    q = select(
        SuggestionRow.id,
        SuggestionRow.profile,
        SuggestionRow.base,
        SuggestionRow.changes,
        SuggestionRow.created_at,
        SuggestionRow.applied_at,
    ).where(SuggestionRow.id == suggestion_id)
    with engine.connect() as conn:
        row = conn.execute(q).first()
    return StoredSuggestion(*row) if row else None


def mark_applied(engine: Engine, suggestion_id: int, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(update(SuggestionRow).where(SuggestionRow.id == suggestion_id).values(applied_at=now))
