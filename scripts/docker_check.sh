#!/usr/bin/env bash
# Builds the CPU image from the Dockerfile and runs the compose services as users do, on a machine without a
# registry: Docker from Debian, a Debian base image made with debootstrap, the wheels downloaded on the host.
#   scripts/docker_check.sh          (as root, or with sudo; .ci/run calls it after the tests)
# Checks: the image builds, `docker-compose --profile cpu up translator-cpu` becomes ready, translates the README's
# example as the library does, takes an adapter upload with the admin token and exits 0 on SIGTERM
# (`docker-compose stop`); two replicas share the bundle volume (an upload persisted through one is served by
# the other). What it made is removed at the end; the base image is kept for the next run (KEEP_BASE=0 removes
# it too; KEEP_IMAGE=1 keeps the built image). Where Docker cannot run, it says so and exits 0.
# The daemon runs without a bridge or iptables rules (--bridge=none --iptables=false), so the containers use the
# host's network: the services run as docker-compose.yml defines them, with network_mode: host and a port each
# in place of the published ports (scripts/docker_services.py writes that form of the file).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BASE=${DOCKER_BASE_IMAGE:-lslo-ci/debian:bookworm-minbase}
IMAGE=lslo-translator:cpu
PROJECT=lslo-docker-check
TOKEN=docker-check-token
PORT=${DOCKER_CHECK_PORT:-18000}
WORK=$(mktemp -d)
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
start=$(date +%s)
say() { echo "docker check ($(( $(date +%s) - start )) s): $*"; }
skip() { echo "docker check: SKIPPED: $*" >&2; exit 0; }
DOCKERD_PID=""
compose() { $SUDO docker-compose -p "$PROJECT" -f "$WORK/compose.yml" "$@"; }
cleanup() {
  set +e
  [ -f "$WORK/compose.yml" ] && compose --profile cpu --profile replicas down -v --remove-orphans >/dev/null 2>&1
  [ "${KEEP_IMAGE:-0}" = 1 ] || $SUDO docker image rm -f "$IMAGE" >/dev/null 2>&1
  [ "${KEEP_BASE:-1}" = 1 ] || $SUDO docker image rm -f "$BASE" >/dev/null 2>&1
  $SUDO docker image prune -f >/dev/null 2>&1   # the layers of a build that failed
  $SUDO docker builder prune -f >/dev/null 2>&1
  find docker/wheels -name '*.whl' -delete
  [ -n "$DOCKERD_PID" ] && $SUDO kill "$DOCKERD_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# 1. Docker from Debian (dockerd 20.10, docker-compose 1.29) and debootstrap.
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null; } || skip "could not install ${missing[*]} from Debian"
fi
# 2. The daemon: the one running, or one started here.
if ! $SUDO docker info >/dev/null 2>&1; then
  $SUDO dockerd --bridge=none --iptables=false --ip6tables=false >"$WORK/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  for _ in $(seq 60); do $SUDO docker info >/dev/null 2>&1 && break; sleep 1; done
  $SUDO docker info >/dev/null 2>&1 || { tail -5 "$WORK/dockerd.log" >&2; skip "dockerd does not start here"; }
fi
say "dockerd $($SUDO docker version --format '{{.Server.Version}}')"
# 3. The base image: Debian bookworm from the mirror apt uses, with the host's apt settings (a snapshot mirror's
#    Release files may be past their Valid-Until date).
if ! $SUDO docker image inspect "$BASE" >/dev/null 2>&1; then
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  $SUDO debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -5 "$WORK/debootstrap.log" >&2; skip "debootstrap could not make a Debian base image"; }
  for f in /etc/apt/apt.conf.d/*; do
    grep -q 'Check-Valid-Until\|Check-Date' "$f" 2>/dev/null && $SUDO cp "$f" "$WORK/rootfs/etc/apt/apt.conf.d/"
  done
  $SUDO rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  $SUDO tar -C "$WORK/rootfs" -c . | $SUDO docker import - "$BASE" >/dev/null
  $SUDO rm -rf "$WORK/rootfs"
  say "base image $BASE made with debootstrap from $mirror"
fi
# 4. Wheels of torch (the version the project tests) and every dependency of the service, from the host's pip
#    configuration, for a build that reaches no package index.
torch_version=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
"$PY" -m pip download --quiet --dest docker/wheels "torch==$torch_version" . "setuptools>=68" wheel 2>"$WORK/pip.log" \
  || { cat "$WORK/pip.log" >&2; exit 1; }
# 5. The image, from the Dockerfile as users build it, with the CI's base and wheels as build arguments.
$SUDO docker build --network host --force-rm -t "$IMAGE" --build-arg BASE_IMAGE="$BASE" \
  --build-arg TORCH_VERSION="$torch_version" --build-arg PIP_OPTIONS="--no-index --find-links /wheels" . \
  >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; echo "docker build failed" >&2; exit 1; }
size=$($SUDO docker image inspect -f '{{.Size}}' "$IMAGE")
say "built $IMAGE: $(( size / 1000000 )) MB (torch $torch_version)"
[ "$($SUDO docker image inspect -f '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] || { echo "image runs as root" >&2; exit 1; }
# The service only (no training, benchmark or test code), and the `sleep` the Kubernetes preStop hook runs.
$SUDO docker run --rm --network none --entrypoint sh "$IMAGE" -c \
  '! python3 -c "import training" 2>/dev/null && ! python3 -c "import bench" 2>/dev/null && sleep 0' \
  || { echo "the image holds training or benchmark code, or has no sleep" >&2; exit 1; }

# 6. The compose services (scripts/docker_services.py derives their host-network form from docker-compose.yml).
"$PY" scripts/docker_services.py --compose "$WORK/compose.yml" --project "$PROJECT" --image "$IMAGE" \
  --port "$PORT" --token "$TOKEN"
say "passed"
