"""The app factory (`changegate serve` runs it: bot/serve.py).

`create_app(settings, options)` does everything that can fail before the server listens: it loads
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
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.routing import Route

from bot import governor, pages, redelivery, store
from bot.forges import Forge
from bot.governor import PolicyHolder
from bot.settings import Settings
from bot.setup.flow import SetupFlow
from bot.web import Ingress
from bot.worker import Handlers, WorkerConfig, WorkerPool, build_forges, governed_pool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppOptions:
    """What `create_app` would otherwise build from its settings: tests inject a test
    forge or database, or run without in-process workers (`workers=0`); `handlers` are
    plugged into the workers over the governor's (see `bot.worker.Handlers`). `wake`:
    called when work is stored, for workers outside this process (`serve`)."""

    forges: Mapping[str, Forge] | None = None
    engine: Engine | None = None
    workers: int | None = None
    handlers: Handlers = Handlers()
    wake: Callable[[], None] | None = None


def create_app(settings: Settings, options: AppOptions = AppOptions()) -> Starlette:
    """A ready-to-serve app: the governor's parts, its in-process workers (when
    `options.workers`, or the settings' worker count, is above 0), the webhook ingress and
    the pages, all built before the server listens."""
    holder = PolicyHolder.from_settings(settings)
    engine = (
        options.engine if options.engine is not None else store.make_engine(settings.database_url)
    )
    schema = store.ensure_current(engine, settings.database_url, auto_upgrade_fresh_sqlite=True)
    forges = (
        dict(options.forges)
        if options.forges is not None
        else build_forges(settings, awaiting_app=True)
    )
    count = settings.worker_count if options.workers is None else options.workers
    # in-process workers idle on the governor's doorbell; workers elsewhere are woken by `wake`
    parts = governor.build(
        settings, engine, holder, forges, on_enqueued=options.wake if count <= 0 else None
    )
    setup = SetupFlow(settings, holder)  # `/`; registers the GitHub App while there is none
    config = WorkerConfig.from_settings(settings)
    pool = (
        governed_pool(parts, engine, forges, config, count=count, handlers=options.handlers)
        if count > 0
        else None
    )
    ingress = Ingress(
        settings,
        engine,
        forges,
        holder,
        on_stored=pool.wake if pool is not None else options.wake,
        slack=parts.clicks,
    )
    lifetime = _Lifetime(
        settings=settings,
        schema=schema,
        setup=setup,
        forges=forges,
        pool=pool,
        ingress=ingress,
        engine=engine,
        own_engine=options.engine is None,
    )
    app = Starlette(
        routes=[
            *_ingress_routes(ingress),
            *pages.routes(engine, settings, holder, forges=forges),
            *setup.routes(),
        ],
        lifespan=lifetime.run,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.policy = holder
    app.state.forges = forges
    app.state.workers = pool
    app.state.governor = parts
    app.state.setup = setup
    return app


def _ingress_routes(ingress: Ingress) -> list[Route]:
    """The webhooks, Slack's interactions, and the probes and metrics."""
    return [
        Route("/webhooks/github", ingress.github, methods=["POST"]),
        Route("/webhooks/gitlab", ingress.gitlab, methods=["POST"]),
        Route("/slack/interactions", ingress.slack, methods=["POST"]),
        Route("/healthz", ingress.healthz, methods=["GET"]),
        Route("/readyz", ingress.readyz, methods=["GET"]),
        Route("/metrics", ingress.metrics, methods=["GET"]),
    ]


@dataclass(frozen=True)
class _Lifetime:
    """What the app's lifespan starts (workers, redelivery jobs) and stops gracefully on
    shutdown, disposing of the engine when the app made it (`own_engine`)."""

    settings: Settings
    schema: str
    setup: SetupFlow
    forges: Mapping[str, Forge]
    pool: WorkerPool | None
    ingress: Ingress
    engine: Engine
    own_engine: bool

    @contextlib.asynccontextmanager
    async def run(self, _app: Starlette) -> AsyncIterator[None]:
        settings = self.settings
        log.info(
            "changegate starting", extra={"settings": settings.summary(), "schema": self.schema}
        )
        self.setup.announce()
        for name in ("github", "gitlab"):
            if getattr(settings, f"{name}_enabled") and name not in self.forges:
                log.warning("%s is configured but its forge could not be built", name)
        if self.pool is not None:
            self.pool.start()
        jobs = redelivery.start_jobs(settings, self.forges, self.engine)
        try:
            yield
        finally:
            jobs.stop()
            self.ingress.writer.stop()  # uvicorn has answered every request by now
            if self.pool is not None:
                self.pool.stop(timeout=settings.shutdown_timeout_seconds)
            if self.own_engine:
                self.engine.dispose()
