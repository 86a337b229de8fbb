"""Adapter bundles on disk: one ``<lang>.safetensors`` per language plus ``manifest.json``."""

from lslo.io.adapter_file import FORMAT_VERSION, read_language_file, write_language_file
from lslo.io.bundle import BUNDLE_MANIFEST, BundleManifest, load_bundle, load_language_file, read_manifest, save_bundle
from lslo.io.fingerprint import base_fingerprint, compare_fingerprints

__all__ = [
    "BUNDLE_MANIFEST",
    "FORMAT_VERSION",
    "BundleManifest",
    "base_fingerprint",
    "compare_fingerprints",
    "load_bundle",
    "load_language_file",
    "read_language_file",
    "read_manifest",
    "save_bundle",
    "write_language_file",
]
