# LSLo translation service: the library and the server, the demo model as a default.
#   GPU (default): docker build -t lslo-translator:gpu .
#   CPU:           docker build -t lslo-translator:cpu --build-arg BASE_IMAGE=debian:bookworm-slim \
#                      --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu .
# Offline: put a wheel of every dependency in docker/wheels/ and add
#     --build-arg PIP_OPTIONS="--no-index --find-links /wheels"   (scripts/docker_check.sh does this).
# torch's wheels carry their own CUDA libraries; the CUDA base image brings the NVIDIA runtime settings.
# Mount your own model over /models/base and /models/bundle (or set LSLO_BASE / LSLO_BUNDLE).
ARG BASE_IMAGE=nvidia/cuda:12.6.3-base-ubuntu24.04

# ---- build: a virtual environment with torch and the project (pip, wheels, sources stay in this stage)
FROM ${BASE_IMAGE} AS build
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=
ARG PIP_OPTIONS=
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
COPY docker/wheels /wheels
# torch first, from the index that matches the base image (CUDA or CPU), then the project: lslo and server only,
# without the training, benchmark and test extras.
# hadolint ignore=SC2086
RUN /opt/venv/bin/pip install $PIP_OPTIONS ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY lslo ./lslo
COPY server ./server
# hadolint ignore=SC2086
RUN /opt/venv/bin/pip install $PIP_OPTIONS . \
    && /opt/venv/bin/python -c "import torch, server.http.app; print('torch', torch.__version__)"
# What serving never reads: torch's C++ headers and test programs (about 190 MB; torch_shm_manager stays), and
# setuptools.
RUN site=$(/opt/venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
    && rm -rf "$site/torch/include" "$site/torch/test" \
    && find "$site/torch/bin" -mindepth 1 -not -name torch_shm_manager -delete \
    && /opt/venv/bin/pip uninstall -y -q setuptools \
    && /opt/venv/bin/python -c "import torch, server.http.app; torch.ones(2) @ torch.ones(2)"

# ---- the image: Python, the environment, the demo model; a non-root user
FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
    && useradd --create-home --uid 10001 --user-group --shell /usr/sbin/nologin lslo
COPY --from=build /opt/venv /opt/venv
COPY --chown=10001:10001 adapters/demo/base /models/base
COPY --chown=10001:10001 adapters/demo/bundle /models/bundle

ENV LSLO_HOST=0.0.0.0 \
    LSLO_PORT=8000 \
    LSLO_BASE=/models/base \
    LSLO_BUNDLE=/models/bundle \
    HF_HUB_OFFLINE=1
USER 10001:10001
WORKDIR /home/lslo
EXPOSE 8000
VOLUME ["/models"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "-m", "server.healthcheck"]
# SIGTERM drains: in-flight requests finish, then the process exits 0 (the Kubernetes manifests give it 45 s).
STOPSIGNAL SIGTERM
CMD ["python3", "-m", "server"]
