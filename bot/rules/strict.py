"""The base of every policy model: unknown keys are refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Policy models refuse unknown keys: a typo must be an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)
