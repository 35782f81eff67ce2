"""Filesystem helpers over fsspec, so local paths, `memory://`, `s3://` and `gs://` all work."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

import fsspec
import pyarrow.fs as pafs


def filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """Return the fsspec filesystem of `url` and the path inside it."""
    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


def arrow_filesystem(url: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem for `url` (fsspec-backed), for pyarrow's dataset readers and writers."""
    fs, path = filesystem(url)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])


def exists(url: str) -> bool:
    fs, path = filesystem(url)
    return fs.exists(path)


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        return f.read()


def write_bytes_atomic(url: str, data: bytes) -> None:
    """Write to a temporary name, then move into place: readers never see half a file."""
    with atomic_writer(url) as f:
        f.write(data)


def read_json(url: str) -> Any:
    return json.loads(read_bytes(url).decode("utf-8"))


def write_json_atomic(url: str, value: Any) -> None:
    write_bytes_atomic(url, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def remove(url: str) -> bool:
    """Delete the file or folder at `url` (a folder with everything under it); False when none was there."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return False
    fs.rm(path, recursive=True)
    return True


def makedirs(url: str) -> None:
    fs, path = filesystem(url)
    fs.makedirs(path, exist_ok=True)


def fingerprint(*parts: bytes | str) -> str:
    """A short stable hash of byte/str parts (16 hex chars)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8") if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def is_local(url: str) -> bool:
    fs, _ = filesystem(url)
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def localize(url: str) -> str:
    """A local path holding the contents of `url`: a remote directory is copied into the cache once per
    version (keyed by its URL and its files' names, sizes and modification stamps)."""
    if is_local(url):
        return filesystem(url)[1]
    from .settings import cache_dir

    fs, path = filesystem(url)
    listing = sorted(
        (name, info.get("size"), [str(info[k]) for k in _VERSION_KEYS if info.get(k) is not None])
        for name, info in fs.find(path, detail=True).items()
    )
    local = os.path.join(cache_dir(), "remote", fingerprint(url, json.dumps(listing, default=str)))
    if not os.path.exists(local):
        # Fetched beside it and renamed into place: a process on the same node never reads half a copy.
        staging = f"{local}.tmp-{uuid.uuid4().hex[:8]}"
        fs.get(path.rstrip("/") + "/", staging, recursive=True)
        try:
            os.rename(staging, local)
        except OSError:  # another process put the same version there first
            shutil.rmtree(staging, ignore_errors=True)
    return local


# What object stores and filesystems report as a file's version (S3, GCS, Azure, local, HTTP).
_VERSION_KEYS = (
    "ETag",
    "etag",
    "md5Hash",
    "generation",
    "LastModified",
    "last_modified",
    "updated",
    "mtime",
    "created",
)


@contextlib.contextmanager
def local_staging(url: str) -> Iterator[str]:
    """Yield a local directory to write into; for a remote `url` it is uploaded on success."""
    if is_local(url):
        path = filesystem(url)[1]
        os.makedirs(path, exist_ok=True)
        yield path
        return
    fs, path = filesystem(url)
    with tempfile.TemporaryDirectory() as tmp:
        yield tmp
        fs.makedirs(path, exist_ok=True)
        fs.put(tmp.rstrip("/") + "/", path, recursive=True)


@contextlib.contextmanager
def atomic_writer(url: str) -> Iterator[Any]:
    """Open `url` for binary writing under a temporary name; move it into place only on success.

    Example:
        >>> with atomic_writer("memory://out/part.parquet") as f:
        ...     f.write(b"...")  # readers see no file until the block ends
    """
    fs, path = filesystem(url)
    parent = path.rsplit("/", 1)[0] if "/" in path else ""
    if parent:
        fs.makedirs(parent, exist_ok=True)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(tmp, "wb") as f:
            yield f
        fs.mv(tmp, path)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise
