"""Request and response bodies (LibreTranslate-compatible where LibreTranslate defines them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class TranslateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: str | list[str] = Field(description="text, or a list of texts")
    source: str = Field(description="source language code, e.g. 'en', or 'auto' to detect each text's own")
    target: str = Field(description="target language code, e.g. 'fr'")
    format: Literal["text", "html"] = Field("text", description="'html': translate the text, keep the markup")
    alternatives: int = Field(0, ge=0, description="additional translations (n-best from beam search)")
    api_key: str | None = Field(None, description="API key, when the service requires one")
    glossary: list[dict[str, str]] | dict[str, str] | None = Field(
        None,
        description='terms to translate so: a list of {"source", "target"} or an object of source term ->'
        " target term (a target equal to its source: do not translate); whole words, any case",
    )
    dnt: list[str] | None = Field(None, description="terms to keep as they are (do not translate)")
    glossary_id: str | None = Field(
        None,
        description="a stored glossary (PUT /glossaries/{id}) for this pair; the inline glossary's terms win over its",
    )
    confidence: bool = Field(False, description="also answer a confidence in [0, 1] per translation")


class DetectedLanguage(BaseModel):
    language: str
    confidence: float = Field(description="0-100")


class TranslateResponse(BaseModel):
    translatedText: str | list[str]  # noqa: N815 - LibreTranslate's field name
    alternatives: list[str] | list[list[str]] | None = None
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = None  # noqa: N815 - with source 'auto'
    # With "confidence": true: the geometric mean of the tokens' probabilities (0: a sentence was left untranslated;
    # null: not scored, e.g. --beam 1 or a text with nothing to translate), shaped as translatedText / alternatives.
    confidence: float | None | list[float | None] = None
    alternativesConfidence: list[float | None] | list[list[float | None]] | None = None  # noqa: N815


class DetectRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: str = Field(description="text whose language to detect")
    api_key: str | None = Field(None, description="API key, when the service requires one")


class LanguageEntry(BaseModel):
    code: str
    name: str
    targets: list[str]
    adapter: bool = Field(False, description="whether the language has its own adapter (else the base model alone)")


class ErrorBody(BaseModel):
    error: str
    request_id: str | None = Field(None, description="with a 500: the id under which the server logged the error")


class AdapterEntry(BaseModel):
    code: str
    rank: int
    tier: str | None
    parameters: int
    nonzero: int
    sha256: str
    source: Literal["bundle", "upload"]
    loaded_at: str
    bundle_sha256: str | None = Field(
        None,
        description="the bundle's file for this language at the last poll "
        "(with --bundle-poll-s; '' when the manifest has no sha256)",
    )


class BundleRefusal(BaseModel):
    code: str
    sha256: str = Field(description="the manifest's sha256 of the refused file")
    reason: str


class BundleState(BaseModel):
    revision: int | None = Field(description="the manifest's revision at the last poll")
    checked_at: str | None
    error: str | None = Field(description="why the manifest could not be read (nothing changed then)")
    in_sync: bool = Field(
        description="this replica serves exactly the bundle's languages at the bundle's sha256, "
        "and every file of the bundle checks out"
    )
    refused: list[BundleRefusal]


class GlossaryTerm(BaseModel):
    source: str
    target: str


class GlossaryInfo(BaseModel):
    id: str
    source: str = Field(description="its source language, as the file names it")
    target: str
    terms: int = Field(description="how many terms it has")
    created: bool | None = Field(None, description="PUT: whether it is new (else it replaced one)")
    entries: list[GlossaryTerm] | None = Field(None, description="GET of one glossary: its terms")


class GlossaryList(BaseModel):
    glossaries: list[str]


class AdapterList(BaseModel):
    bundle: str
    base_fingerprint: str
    languages: list[AdapterEntry]
    sync: BundleState | None = Field(None, description="with --bundle-poll-s: the bundle as the last poll saw it")


class AdapterChange(BaseModel):
    language: str
    action: Literal["added", "replaced", "removed"]
    rank: int | None = None
    sha256: str | None = None
    persisted: bool | None = Field(None, description="with persist=true: whether the bundle was changed")


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 413, 429, 500, 503)
}
