# LSLo translation service.
#   GPU (default): docker build -t lslo-translator:gpu .
#   CPU:           docker build -t lslo-translator:cpu --build-arg BASE_IMAGE=ubuntu:24.04 \
#                      --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu .
# The demo model and bundle are copied to /models as a default; mount your own over /models/base and
# /models/bundle (or set LSLO_BASE / LSLO_BUNDLE).
ARG BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
FROM ${BASE_IMAGE}

ARG TORCH_VERSION=2.7.1
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin lslo

WORKDIR /app
# torch first, from the index that matches the base image (CUDA or CPU), then the project.
RUN pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"
# The service needs the library and the server only (training/ and research/ stay out of the image).
COPY pyproject.toml README.md ./
COPY lslo ./lslo
COPY server ./server
RUN pip install .
COPY --chown=lslo:lslo adapters/demo/base /models/base
COPY --chown=lslo:lslo adapters/demo/bundle /models/bundle

ENV LSLO_HOST=0.0.0.0 \
    LSLO_PORT=8000 \
    LSLO_BASE=/models/base \
    LSLO_BUNDLE=/models/bundle \
    HF_HUB_OFFLINE=1
USER 10001:10001
EXPOSE 8000
VOLUME ["/models"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["python3", "-m", "server"]
