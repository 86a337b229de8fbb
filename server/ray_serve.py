"""The service on Ray Serve: ``python -m server.ray_serve [server flags] --replicas N`` (``ray`` is the ``ray``
extra: ``pip install -e .[ray]``).

Each replica is the whole FastAPI service (front end, its engine core process, metrics) in a Ray actor; Ray's HTTP proxy
spreads requests over the replicas, restarts failed ones and, with ``--max-replicas``, adds and removes replicas
with the load. Adapter changes reach every replica through the shared bundle: the replicas follow it
(``--bundle-poll-s``, 5 s unless given), and ``PUT /adapters/{lang}?persist=true`` sent to any of them writes it.
A bundle is chosen over Ray's ``reconfigure`` because it also survives restarts of the whole application and
replicas started later by the autoscaler, and because adapter files (megabytes each) do not belong in a
deployment's JSON config. On a cluster of several machines the bundle must be on a volume they all mount.

Also ``serve run server.ray_serve:app_builder bundle=/shared/bundle replicas=2`` (keys: any server setting or
deployment setting, as ``key=value``).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator

from lslo.cli.flags import add_arguments, validation_problems
from server.settings import ServerSettings


class RayDeployment(BaseModel):
    """How the service is deployed on Ray Serve."""

    replicas: int = Field(2, ge=1, description="replicas (the starting number when autoscaling)")
    max_replicas: int = Field(
        0,
        ge=0,
        description="autoscale between --min-replicas and this many replicas by "
        "ongoing requests (0: a fixed number of replicas)",
    )
    min_replicas: int = Field(1, ge=1, description="fewest replicas when autoscaling")
    target_ongoing_requests: float = Field(
        32.0, gt=0, description="autoscaling target per replica (requests in progress or queued)"
    )
    cpus_per_replica: float = Field(1.0, gt=0, description="CPUs Ray reserves for each replica")
    gpus_per_replica: float = Field(
        0.0, ge=0, description="GPUs Ray reserves for each replica (1 for one GPU each; set --device cuda too)"
    )
    ray_address: str | None = Field(
        None, description="Ray cluster to join ('auto': the running one); default: start a local one"
    )

    @model_validator(mode="after")
    def _bounds(self) -> RayDeployment:
        if self.max_replicas and not self.min_replicas <= self.replicas <= self.max_replicas:
            raise ValueError("autoscaling needs --min-replicas <= --replicas <= --max-replicas")
        return self


def following(settings: ServerSettings) -> ServerSettings:
    """Replicas follow the bundle: poll every 5 s unless told otherwise."""
    if settings.bundle_dir is not None and not settings.bundle_poll_s:
        return settings.model_copy(update={"bundle_poll_s": 5.0})
    return settings


def build(settings: ServerSettings, deployment: RayDeployment) -> Any:
    """The Ray Serve application (``Deployment.bind()``) of the service."""
    from ray import serve

    settings = following(settings)

    def asgi_app() -> Any:  # runs in each replica: its own front end and engine core process
        from server.http.app import create_app
        from server.logs import configure_logging

        configure_logging(settings.log_level, settings.log_format)
        return create_app(settings)

    autoscaling = None
    if deployment.max_replicas:
        autoscaling = {
            "min_replicas": deployment.min_replicas,
            "initial_replicas": deployment.replicas,
            "max_replicas": deployment.max_replicas,
            "target_ongoing_requests": deployment.target_ongoing_requests,
        }

    @serve.deployment(
        name="lslo-translator",
        num_replicas=None if autoscaling else deployment.replicas,
        autoscaling_config=autoscaling,
        ray_actor_options={"num_cpus": deployment.cpus_per_replica, "num_gpus": deployment.gpus_per_replica},
        max_ongoing_requests=max(64, settings.max_queue),
        graceful_shutdown_timeout_s=settings.graceful_timeout_s,
        health_check_period_s=10,
    )
    @serve.ingress(asgi_app)
    class Translator:
        pass

    app: Any = Translator  # serve.deployment made the class a Deployment
    return app.bind()


def split(values: dict[str, Any]) -> tuple[ServerSettings, RayDeployment]:
    """One dict of settings (flags or ``key=value`` arguments) -> server settings and deployment settings."""
    ours = {k: v for k, v in values.items() if k in RayDeployment.model_fields}
    rest = {k: v for k, v in values.items() if k not in RayDeployment.model_fields}
    return ServerSettings(**rest), RayDeployment(**ours)


def app_builder(args: dict[str, str]) -> Any:
    """For ``serve run server.ray_serve:app_builder key=value ...``."""
    settings, deployment = split(dict(args))
    return build(settings, deployment)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.ray_serve", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser, ServerSettings, config_file=False)
    add_arguments(parser, RayDeployment, config_file=False)
    values = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    try:
        settings, deployment = split(values)
    except ValidationError as err:
        print("error: invalid settings:\n  " + "\n  ".join(validation_problems(err, as_flags=True)), file=sys.stderr)
        return 2
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray's telemetry: off unless asked for
    try:
        import ray
        from ray import serve
    except ImportError:
        print("error: Ray Serve is not installed: pip install -e '.[ray]'", file=sys.stderr)
        return 2
    ray.init(address=deployment.ray_address, include_dashboard=False, log_to_driver=True)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        serve.run(build(settings, deployment), name="lslo", route_prefix="/", blocking=False)
        print(f"serving on http://{settings.host}:{settings.port}/ with Ray Serve", flush=True)
        stop.wait()
    finally:
        serve.shutdown()  # replicas drain: in-flight requests finish within --graceful-timeout-s
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
