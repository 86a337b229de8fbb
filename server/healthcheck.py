"""The container's health check: exit 0 when the service on this machine answers ``/ready`` (its port from
``LSLO_PORT``, 8000 by default), 1 otherwise. ``python -m server.healthcheck``."""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("LSLO_PORT", "8000")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=4) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
