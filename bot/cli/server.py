"""The server side: `serve`, `worker`, `db upgrade`, `inbox requeue`."""

from __future__ import annotations

import argparse
import sys

from bot.cli.common import EXIT_CRASH, EXIT_PASS, Subcommands, reaching, settings, subcommands


def register(sub: Subcommands[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the webhook server (and its workers)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.set_defaults(run=cmd_serve)

    worker = sub.add_parser("worker", help="run workers without the HTTP server")
    # a `changegate serve` parent's wake-up pipe (bot/worker_processes.py)
    worker.add_argument("--wake-fd", type=int, help=argparse.SUPPRESS)
    worker.set_defaults(run=cmd_worker)

    db = sub.add_parser("db", help="database schema")
    db.set_defaults(run=cmd_db)
    subcommands(db, "db_command", "ACTION").add_parser(
        "upgrade", help="migrate the database to the current schema"
    )

    inbox = sub.add_parser("inbox", help="the durable delivery inbox")
    inbox.set_defaults(run=cmd_inbox)
    requeue = subcommands(inbox, "inbox_command", "ACTION").add_parser(
        "requeue", help="re-queue dead-lettered deliveries"
    )
    requeue.add_argument("delivery_id", nargs="?", help="one delivery (default: all dead ones)")


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.serve import WorkersFailed, serve

    config = settings()
    try:
        with reaching(config.database_url):
            serve(config, args.host, args.port)
    except WorkersFailed as exc:
        print(f"changegate: {exc}", file=sys.stderr)
        return EXIT_CRASH
    return EXIT_PASS


def cmd_worker(args: argparse.Namespace) -> int:
    from bot.worker import WorkerOptions, run_workers

    config = settings()
    with reaching(config.database_url):
        run_workers(config, WorkerOptions(wake_fd=args.wake_fd))
    return EXIT_PASS


def cmd_db(args: argparse.Namespace) -> int:
    from bot.store import display_url, upgrade

    config = settings()
    with reaching(config.database_url):
        upgrade(config.database_url)
    print(f"database at {display_url(config.database_url)} is up to date")
    return EXIT_PASS


def cmd_inbox(args: argparse.Namespace) -> int:
    from bot.inbox import requeue_dead
    from bot.store import open_existing

    config = settings()
    count = requeue_dead(open_existing(config.database_url), args.delivery_id)
    print(f"re-queued {count} dead deliver{'y' if count == 1 else 'ies'}")
    return EXIT_PASS
