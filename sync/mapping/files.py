"""A syllabus file URL as a ``file_db.files`` row: deterministic id, name, type, provider.

Everything here is a pure function of the URL and the source key, so a replay, a restart
and a rebuild from scratch all make the same row.
"""

from __future__ import annotations

import mimetypes
import uuid
from functools import lru_cache
from hashlib import sha1
from urllib.parse import unquote

# The columns a file split writes, by role.
KEY_COLUMN = "id"
OWNER_COLUMN = "owner_id"
URL_COLUMN = "file_url"
DERIVED_COLUMNS = ("file_name", "file_url", "mime_type", "storage_provider")
SOURCE_TABLE_COLUMN = "source_table"
SOURCE_ID_COLUMN = "source_id"
CREATED_COLUMN = "created_at"
UPDATED_COLUMN = "updated_at"
UPDATE_COLUMNS = (
    OWNER_COLUMN,
    *DERIVED_COLUMNS,
    SOURCE_TABLE_COLUMN,
    SOURCE_ID_COLUMN,
    UPDATED_COLUMN,
)
WRITTEN_COLUMNS = (KEY_COLUMN, *UPDATE_COLUMNS, CREATED_COLUMN)
COMPARED_COLUMNS = (
    KEY_COLUMN,
    OWNER_COLUMN,
    *DERIVED_COLUMNS,
    SOURCE_TABLE_COLUMN,
    SOURCE_ID_COLUMN,
)

FILE_NAME_MAX = 255
DEFAULT_MIME = "application/octet-stream"

# Host suffixes of object stores, checked in order; anything else over http(s) is "http".
_HOSTS: tuple[tuple[str, str], ...] = (
    ("amazonaws.com", "s3"),
    ("storage.googleapis.com", "gcs"),
    ("blob.core.windows.net", "azure"),
)
_SCHEMES = {"s3": "s3", "gs": "gcs", "az": "azure", "file": "local", "": "local"}

# Python's built-in extension table only (strict and common types): /etc/mime.types differs
# between machines, and the type written must not.
_BUILTIN = mimetypes.MimeTypes(filenames=())
# Office and text formats syllabi come in that Python 3.11's table lacks; pinned here so a
# Python upgrade does not change the type of a file already migrated.
_DOCUMENTS = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".md": "text/markdown",
    ".epub": "application/epub+zip",
    ".gz": "application/gzip",
}
_TYPES: dict[str, str] = {
    **_BUILTIN.types_map[False],
    **_BUILTIN.types_map[True],
    **_DOCUMENTS,
}


def is_present(url: object) -> bool:
    """A URL counts when it is a string with something besides whitespace."""
    return isinstance(url, str) and bool(url.strip())


def file_id(namespace: uuid.UUID, id_name: str, source_key: object) -> str:
    """The files row id of a source row: UUIDv5 of ``"<id_name>:<key>"``.

    Equal to ``str(uuid.uuid5(namespace, ...))``, computed without the UUID object (this runs
    for every syllabus change).
    """
    # SHA-1 is what UUIDv5 is defined with; this is naming, not security.
    name = namespace.bytes + f"{id_name}:{source_key}".encode()
    digest = bytearray(sha1(name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _split(url: str) -> tuple[str, str, str]:
    """(scheme, host, path) of ``url`` without query and fragment; a bare path has no scheme.

    Simpler than urllib's urlsplit and several times faster; enough for naming a file.
    """
    text = url.strip().partition("#")[0].partition("?")[0]
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "", "", text.replace("\\", "/")
    authority, _, path = rest.partition("/")
    host = authority.rpartition("@")[2]
    host = host.partition("]")[0] + "]" if host.startswith("[") else host.partition(":")[0]
    return scheme.lower(), host.lower(), path


def file_name(url: str) -> str:
    """The URL's last path segment, unquoted, without query or fragment ("" if none)."""
    return _named(_split(url)[2].rstrip("/").rpartition("/")[2])[0]


def mime_type(name: str) -> str:
    """The type of ``name``'s extension (case-insensitive), else application/octet-stream."""
    base, dot, ext = name.rpartition(".")
    if not dot or not base:
        return DEFAULT_MIME
    ext = "." + ext
    return _TYPES.get(ext) or _TYPES.get(ext.lower()) or DEFAULT_MIME


def storage_provider(url: str) -> str:
    scheme, host, _ = _split(url)
    return _provider(scheme, host)


def _provider(scheme: str, host: str) -> str:
    if scheme in ("http", "https"):
        for suffix, provider in _HOSTS:
            if host.endswith(suffix) and (provider != "s3" or ".s3" in host or "s3." in host):
                return provider
        return "http"
    return _SCHEMES.get(scheme, scheme[:32])


def describe(url: str) -> tuple[str, str, str]:
    """(file name or "", mime type, storage provider) of ``url``."""
    scheme, host, path = _split(url)
    name, mime = _named(path.rstrip("/").rpartition("/")[2])
    return name, mime, _provider(scheme, host)


@lru_cache(maxsize=8192)
def _named(segment: str) -> tuple[str, str]:
    # File names repeat across rows (every term's "syllabus.pdf"); unquoting is half the cost.
    name = unquote(segment).strip()[:FILE_NAME_MAX]
    return name, mime_type(name)


__all__ = [
    "COMPARED_COLUMNS",
    "DERIVED_COLUMNS",
    "UPDATE_COLUMNS",
    "WRITTEN_COLUMNS",
    "describe",
    "file_id",
    "file_name",
    "is_present",
    "mime_type",
    "storage_provider",
]
