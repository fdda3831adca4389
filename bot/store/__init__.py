"""The database: tables, the engine factory, schema versions, published verdicts.

One module per concern: `tables` (the SQLModel tables and their metadata), `engine` (what
SQLite and PostgreSQL need for a concurrent inbox), `migrations` (Alembic, and the checks
that a database is current), `evaluations` (verdicts as published, and the newest head
per subject). Callers use this package: `store.make_engine(...)`, `store.deliveries`.
"""

from bot.store.engine import (
    SQLITE_BUSY_SECONDS,
    advisory_key,
    is_postgres,
    make_engine,
    normalize_url,
    ping,
)
from bot.store.evaluations import (
    PublishedVerdict,
    claim_head,
    evaluation_by_token,
    new_token,
    record_basis,
    save_evaluation,
)
from bot.store.migrations import (
    DatabaseUnavailable,
    SchemaError,
    alembic_config,
    alembic_dir,
    current_revision,
    display_url,
    ensure_current,
    head_revision,
    is_empty,
    open_existing,
    unreachable,
    upgrade,
)
from bot.store.tables import (
    MODEL_MODULES,
    BaseChange,
    DeliveryRecord,
    EvaluationRecord,
    SubjectHead,
    base_changes,
    deliveries,
    evaluations,
    load_models,
    metadata,
    subject_heads,
    utcnow,
)

__all__ = [
    "MODEL_MODULES",
    "SQLITE_BUSY_SECONDS",
    "BaseChange",
    "DatabaseUnavailable",
    "DeliveryRecord",
    "EvaluationRecord",
    "PublishedVerdict",
    "SchemaError",
    "SubjectHead",
    "advisory_key",
    "alembic_config",
    "alembic_dir",
    "base_changes",
    "claim_head",
    "current_revision",
    "deliveries",
    "display_url",
    "ensure_current",
    "evaluation_by_token",
    "evaluations",
    "head_revision",
    "is_empty",
    "is_postgres",
    "load_models",
    "make_engine",
    "metadata",
    "new_token",
    "normalize_url",
    "open_existing",
    "ping",
    "record_basis",
    "save_evaluation",
    "subject_heads",
    "unreachable",
    "upgrade",
    "utcnow",
]
