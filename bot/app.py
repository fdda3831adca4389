"""The app factory (`changegate serve` runs it: bot/serve.py).

`create_app(settings)` does everything that can fail before the server listens: it loads
the admin policy (a `PolicyError` with FILE:LINE:COL stops start-up), opens the database
and checks that its schema is current (`store.SchemaError` says to run
`changegate db upgrade`; a brand-new, empty SQLite file is created automatically, see
`store.ensure_current`). The lifespan then starts the in-process workers and stops them
gracefully on shutdown (uvicorn turns SIGTERM into that shutdown).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.routing import Route

from bot import governor, pages, redelivery, store
from bot.forges import Forge
from bot.governor import PolicyHolder
from bot.settings import Settings
from bot.setup.flow import SetupFlow
from bot.web import Ingress
from bot.worker import ActionHandler, SourceHandler, WorkerConfig, build_forges, governed_pool

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    forges: Mapping[str, Forge] | None = None,
    engine: Engine | None = None,
    workers: int | None = None,
    sources: Mapping[str, SourceHandler] | None = None,
    actions: Mapping[str, ActionHandler] | None = None,
    wake: Callable[[], None] | None = None,
) -> Starlette:
    """A ready-to-serve app. `forges`, `engine` and `workers` override what `settings`
    would build (tests inject a test forge, or run without in-process workers);
    `sources` and `actions` plug extra handlers into the workers (see `WorkerPool`), over
    the governor's (evaluations, deploy gates, Slack clicks, expiry: `bot.governor`).
    `wake`: called when work is stored, for workers outside this process (`serve`)."""
    holder = PolicyHolder.from_settings(settings)
    own_engine = engine is None
    engine = engine if engine is not None else store.make_engine(settings.database_url)
    schema = store.ensure_current(engine, settings.database_url, auto_upgrade_fresh_sqlite=True)
    forges = dict(forges) if forges is not None else build_forges(settings, awaiting_app=True)
    count = settings.worker_count if workers is None else workers
    # in-process workers idle on the governor's doorbell; workers elsewhere are woken by `wake`
    parts = governor.build(
        settings, engine, holder, forges, on_enqueued=wake if count <= 0 else None
    )
    setup = SetupFlow(settings, holder)  # `/`; registers the GitHub App while there is none
    config = WorkerConfig.from_settings(settings)
    pool = (
        governed_pool(parts, engine, forges, config, count=count, sources=sources, actions=actions)
        if count > 0
        else None
    )
    ingress = Ingress(
        settings,
        engine,
        forges,
        holder,
        on_stored=pool.wake if pool is not None else wake,
        slack=parts.clicks,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        log.info("changegate starting", extra={"settings": settings.summary(), "schema": schema})
        setup.announce()
        for name in ("github", "gitlab", "slack"):
            if getattr(settings, f"{name}_enabled") and name != "slack" and name not in forges:
                log.warning("%s is configured but its forge could not be built", name)
        if pool is not None:
            pool.start()
        jobs = redelivery.start_jobs(settings, forges, engine)
        try:
            yield
        finally:
            jobs.stop()
            ingress.writer.stop()  # uvicorn has answered every request by now
            if pool is not None:
                pool.stop(timeout=settings.shutdown_timeout_seconds)
            if own_engine:
                engine.dispose()

    app = Starlette(
        routes=[
            Route("/webhooks/github", ingress.github, methods=["POST"]),
            Route("/webhooks/gitlab", ingress.gitlab, methods=["POST"]),
            Route("/slack/interactions", ingress.slack, methods=["POST"]),
            Route("/healthz", ingress.healthz, methods=["GET"]),
            Route("/readyz", ingress.readyz, methods=["GET"]),
            Route("/metrics", ingress.metrics, methods=["GET"]),
            *pages.routes(engine, settings, holder, forges=forges),
            *setup.routes(),
        ],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.policy = holder
    app.state.forges = forges
    app.state.workers = pool
    app.state.governor = parts
    app.state.setup = setup
    return app
