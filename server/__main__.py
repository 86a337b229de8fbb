"""``python -m server``: serve the demo bundle with no arguments; flags override ``LSLO_`` variables."""

from __future__ import annotations

import argparse
import multiprocessing as mp
import signal
import sys

import uvicorn
from pydantic import ValidationError

from lslo.cli.flags import add_arguments
from server.core.client import spawn_core, wait_until_up
from server.core.supervisor import Supervisor
from server.errors import StartupError
from server.http.app import create_app
from server.logs import configure_logging
from server.runtime.front_end import FrontEnd
from server.settings import ServerSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server", description=__doc__)
    add_arguments(parser, ServerSettings, config_file=False)
    args = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    try:
        settings = ServerSettings(**args)
    except ValidationError as err:
        print(f"error: invalid settings:\n{err}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        FrontEnd(settings)  # the tokenizer and languages: a bad base stops here, before the model loads
        core = spawn_core(settings)  # the engine core's process loads the model and bundle before we listen:
        wait_until_up(core, timeout_s=3600)  # a bad bundle stops here too
    except StartupError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if settings.workers > 1:
        return serve_workers(settings, core)
    app = create_app(settings, core)
    # uvicorn shuts down gracefully on SIGTERM (stops accepting, finishes in-flight requests, runs the lifespan
    # shutdown that drains the engine core), then restores the previous handler and re-raises the signal. A no-op
    # handler makes that re-raise harmless, so a graceful stop exits with status 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.graceful_timeout_s,  # type: ignore[arg-type]  # a float works (wait_for)
    )
    return 0


def serve_workers(settings: ServerSettings, core: mp.process.BaseProcess) -> int:
    """``--workers N``: uvicorn's N worker processes share the core, which this process restarts if it dies."""
    supervisor = Supervisor(settings, core)
    supervisor.share()
    supervisor.start()
    try:
        uvicorn.run(
            "server.http.app:worker_app",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.graceful_timeout_s,  # type: ignore[arg-type]  # a float works (wait_for)
        )
    finally:  # the workers are done (SIGTERM: each finished its requests): the core finishes and exits
        code = supervisor.stop(settings.graceful_timeout_s)
    if code != 0:
        print(f"error: the engine core exited with status {code}", file=sys.stderr)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
