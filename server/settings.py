"""Server settings: pydantic-settings, from ``LSLO_``-prefixed environment variables, overridden by flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEMO = Path(__file__).resolve().parents[1] / "adapters" / "demo"


def _split(value: object) -> object:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LSLO_", extra="forbid", frozen=True)

    base: Path = Field(DEMO / "base", description="base model directory (Hugging Face format, with tokenizer)")
    bundle: str = Field(
        "auto",
        description="adapter bundle directory, or 'none' to serve the base alone; auto: the "
        "demo's bundle with the demo's base, else none",
    )
    languages: str = Field(
        "auto",
        description="languages offered besides those with adapters: auto (those the "
        "base's base_info.json lists, else all its language tokens), all, "
        "or a comma list",
    )
    device: str = Field("auto", description="auto (CUDA when available), cpu, cuda or cuda:N")
    dtype: Literal["auto", "fp32", "fp16", "bf16", "int8"] = Field(
        "auto",
        description="weights dtype; auto: bf16 on CUDA when supported else fp16, fp32 on CPU; int8 (CPU "
        "only): the base's matrix products in int8, adapters in fp32",
    )
    host: str = Field("127.0.0.1", description="listen address")
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1, description="HTTP front-end processes, all feeding the one engine core")
    threads: int | None = Field(None, ge=1, description="torch CPU threads")

    max_batch_size: int = Field(
        32, ge=1, description="sentences decoded together (continuous batching; 1 turns batching off)"
    )
    max_wait_ms: float = Field(
        5.0, ge=0, description="how long the first rows wait for company when nothing is running"
    )
    max_queue: int = Field(
        2048,
        ge=1,
        description="rows (sentences) waiting at most; beyond it requests get 503, "
        "and a request of more sentences alone 413",
    )
    beam: int = Field(4, ge=1, le=16, description="beam size")
    max_new_tokens: int = Field(200, ge=1)
    max_length_ratio: float = Field(
        3.0,
        ge=0,
        description="a sentence's translation has at most this many tokens "
        "per source token, plus 10 (a model repeating itself stops early); 0: "
        "max_new_tokens alone",
    )
    max_input_tokens: int = Field(
        256,
        ge=8,
        description="the model's input window; longer sentences are split (at clauses, then words), never cut off",
    )
    max_alternatives: int = Field(3, ge=0, description="most alternatives a request may ask for")

    max_chars_per_item: int = Field(2000, ge=1, description="413 beyond it")
    max_items: int = Field(64, ge=1, description="400 beyond it")
    max_total_chars: int = Field(20000, ge=1, description="413 beyond it (all items of one request)")
    request_timeout_s: float = Field(120.0, gt=0, description="a request waiting longer gets 503")

    glossaries_dir: Path | None = Field(
        None, description="where stored glossaries live (default: in memory; with --workers, in the core's directory)"
    )
    files_dir: Path | None = Field(
        None,
        description="where translated files wait (default: a new temporary "
        "directory; with --workers, in the core's directory)",
    )
    file_ttl_s: float = Field(3600.0, gt=0, description="translated files are deleted after this many seconds")
    files_max_bytes: int = Field(
        2**30, ge=1, description="translated files kept at most, together (the oldest go first)"
    )
    max_file_bytes: int = Field(10 * 2**20, ge=1, description="largest file to translate (413 beyond it)")
    max_file_chars: int = Field(100_000, ge=1, description="most characters of text in one file (413 beyond it)")
    file_timeout_s: float = Field(900.0, gt=0, description="a file taking longer gets 503")
    frontend_timeout_ms: int = Field(500, ge=0, description="the web page translates this long after typing stops")

    admin_token: SecretStr | None = Field(None, description="bearer token of the adapter endpoints (off when unset)")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="keys accepted for /translate (comma list; open when empty)"
    )
    rate_limit_per_minute: int = Field(0, ge=0, description="requests per minute per API key (0: no limit)")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="CORS origins (off when empty)"
    )
    max_upload_bytes: int = Field(256 * 2**20, ge=1, description="largest adapter upload")
    bundle_poll_s: float = Field(
        0.0,
        ge=0,
        description="check the bundle every this many seconds and serve what "
        "it holds (replicas sharing a bundle; 0: never)",
    )

    log_level: str = "info"
    log_format: Literal["json", "text"] = "json"
    graceful_timeout_s: float = Field(30.0, ge=0, description="SIGTERM: time to finish in-flight requests")

    _split_lists = field_validator("api_keys", "cors_origins", mode="before")(_split)
    _path_as_text = field_validator("bundle", mode="before")(lambda v: str(v) if isinstance(v, Path) else v)

    @property
    def bundle_dir(self) -> Path | None:
        """The bundle to load, or None (the base alone)."""
        if self.bundle.strip().lower() == "none":
            return None
        if self.bundle == "auto":
            same_base = self.base.resolve() == (DEMO / "base").resolve()
            return DEMO / "bundle" if same_base else None
        return Path(self.bundle)
