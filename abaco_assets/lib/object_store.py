"""S3 and GCS prefixes as zones and landing stores.

Credentials and endpoints come from each SDK's standard chain, never from
this code: for S3 the AWS environment variables (``AWS_ACCESS_KEY_ID``,
``AWS_REGION``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3``
for any S3-compatible store), the shared config files and IRSA web identity;
for GCS Application Default Credentials / workload identity, and
``STORAGE_EMULATOR_HOST`` for an emulator.

Objects are read through the SDK into bytes: DuckDB never sees an s3:// or
gs:// URL (its httpfs extension cannot be installed offline with the pinned
DuckDB), and the typed zone it reads stays local.

Write-once: the raw and quarantine zones never overwrite an object.  S3 uses
a conditional PUT (``If-None-Match: *``; a store that does not implement it
falls back to HEAD before PUT), GCS an ``ifGenerationMatch=0`` upload after an
existence check.  Each object carries its SHA-256 in its metadata; when the
key is taken, the existing object is compared by that hash: identical is a
no-op, a content-addressed key (the key names the SHA-256 of the bytes) that
holds other bytes raises ``WriteOnceViolation``, and any other key (an error
report) keeps its first version.
"""

from __future__ import annotations

import functools
import io
import os
from typing import Any, BinaryIO, Iterator

from abaco_assets.lib.storage import LandedObject, ObjectLocation, WriteOnceViolation, sha256_hex

SHA256_METADATA_KEY = "sha256"
LIST_PAGE_SIZE = 1000  # S3's maximum; the paginator follows continuation tokens past it
RANGED_READ_BYTES = 256 * 1024  # one GET fetches at least this much of a zip being inspected
# The AWS settings a client depends on: a change (e.g. a test's endpoint) gets a new client.
_AWS_CLIENT_ENV = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE",
                   "AWS_ACCESS_KEY_ID", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ROLE_ARN",
                   "AWS_WEB_IDENTITY_TOKEN_FILE", "ABACO_S3_ADDRESSING_STYLE")


def object_prefix(location: ObjectLocation) -> "S3Prefix | GcsPrefix":
    if location.scheme == "s3":
        return S3Prefix(location.bucket, location.prefix)
    return GcsPrefix(location.bucket, location.prefix)


def s3_client():
    """A boto3 S3 client from the standard AWS chain (cached per AWS environment)."""
    return _s3_client_for(tuple(os.environ.get(name) for name in _AWS_CLIENT_ENV))


@functools.lru_cache(maxsize=8)
def _s3_client_for(environment: tuple[str | None, ...]):
    import boto3
    from botocore.config import Config

    addressing = os.environ.get("ABACO_S3_ADDRESSING_STYLE", "auto")  # "path" for stores without virtual hosts
    config = Config(retries={"mode": "standard", "max_attempts": 5}, s3={"addressing_style": addressing})
    return boto3.session.Session().client("s3", config=config)


def _is_content_addressed(key: str, sha: str) -> bool:
    return key.rsplit("/", 1)[-1].split(".", 1)[0] == sha


class _BucketPrefix:
    """A prefix of a bucket: keys are relative to it; ``client`` is given or made when first used."""

    scheme = ""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None):
        self.bucket = bucket
        self.prefix = prefix
        self._client = client

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def locate(self, key: str = "") -> str:
        return f"{self.scheme}://{self.bucket}/{self._key(key)}"


class S3Prefix(_BucketPrefix):
    """``s3://bucket/prefix``: a write zone and a landing store."""

    scheme = "s3"

    @property
    def client(self):
        return self._client or s3_client()

    def _error_code(self, exc) -> tuple[str, int]:
        response = getattr(exc, "response", {}) or {}
        return (str(response.get("Error", {}).get("Code", "")),
                int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)))

    def _head(self, key: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            code, status = self._error_code(exc)
            if status == 404 or code in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()

    def replace(self, key: str, data: bytes) -> None:
        """A single PUT is atomic in S3: readers see the old or the new object."""
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                               Metadata={SHA256_METADATA_KEY: sha256_hex(data)})

    def put_once(self, key: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        sha = sha256_hex(data)
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*",
                                   Metadata={SHA256_METADATA_KEY: sha})
            return True
        except ClientError as exc:
            code, status = self._error_code(exc)
            if code == "NotImplemented" or status == 501:
                return self._put_once_without_condition(key, data, sha)
            if not (status in (409, 412) or code in ("PreconditionFailed", "ConditionalRequestConflict")):
                raise
        self._check_existing(key, data, sha)
        return False

    def _put_once_without_condition(self, key: str, data: bytes, sha: str) -> bool:
        """For S3-compatible stores without conditional PUT: HEAD, then PUT (a race can overwrite
        with identical bytes only, since raw keys name their content)."""
        if self._head(key) is not None:
            self._check_existing(key, data, sha)
            return False
        self.replace(key, data)
        return True

    def _check_existing(self, key: str, data: bytes, sha: str) -> None:
        head = self._head(key) or {}
        existing = (head.get("Metadata") or {}).get(SHA256_METADATA_KEY)
        if existing is None:  # written by another tool: compare the bytes themselves
            existing = sha256_hex(self.read(key))
        if existing != sha and _is_content_addressed(key, sha):
            raise WriteOnceViolation(f"{self.locate(key)} holds bytes with SHA-256 {existing}, not {sha}: "
                                     "refusing to overwrite a write-once object")

    def unavailable_reason(self) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except ClientError as exc:
            code, status = self._error_code(exc)
            return f"cannot list {self.locate()} ({code or status}: {exc})"
        except BotoCoreError as exc:  # no endpoint, no credentials
            return f"cannot list {self.locate()} ({exc})"
        return None

    def list_objects(self, prefix: str = "", *, fingerprint: bool = True) -> Iterator[LandedObject]:
        """Every page of ListObjectsV2 (LastModified has 1-second resolution: the cursor handles ties)."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix),
                                   PaginationConfig={"PageSize": LIST_PAGE_SIZE})
        for page in pages:
            for entry in page.get("Contents", []):
                if entry["Key"].endswith("/"):
                    continue  # a "folder" placeholder made by a console, not a file
                modified_at = entry["LastModified"].timestamp()
                yield LandedObject(entry["Key"][len(self.prefix):], modified_at, modified_at,
                                   entry.get("ETag", "").strip('"') if fingerprint else "", int(entry["Size"]))

    def open_seekable(self, key: str) -> BinaryIO:
        head = self._head(key)
        if head is None:
            raise FileNotFoundError(self.locate(key))
        raw = _RangedObjectReader(self, self._key(key), int(head["ContentLength"]), head.get("ETag"))
        return io.BufferedReader(raw, buffer_size=RANGED_READ_BYTES)


class _RangedObjectReader(io.RawIOBase):
    """A read-only, seekable view of one S3 object; every read is a ranged GET pinned to its ETag.

    ``zipfile`` reads the central directory at the end of an archive, so listing
    a zip's members costs a few small requests instead of a download.
    """

    def __init__(self, store: S3Prefix, full_key: str, size_bytes: int, etag: str | None):
        super().__init__()
        self._store, self._full_key, self._size_bytes, self._etag = store, full_key, size_bytes, etag
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size_bytes}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self._size_bytes - self._position)
        if wanted <= 0:
            return 0
        arguments = dict(Bucket=self._store.bucket, Key=self._full_key,
                         Range=f"bytes={self._position}-{self._position + wanted - 1}")
        if self._etag:
            arguments["IfMatch"] = self._etag  # fail rather than mix two versions of the object
        chunk = self._store.client.get_object(**arguments)["Body"].read()
        buffer[: len(chunk)] = chunk
        self._position += len(chunk)
        return len(chunk)


class GcsPrefix(_BucketPrefix):
    """``gs://bucket/prefix``: a write zone and a landing store (google-cloud-storage)."""

    scheme = "gs"

    @property
    def client(self):
        if self._client is None:
            from google.cloud import storage

            self._client = storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT"))
        return self._client

    def _blob(self, key: str):
        return self.client.bucket(self.bucket).blob(self._key(key))

    def exists(self, key: str) -> bool:
        return self._blob(key).exists()

    def read(self, key: str) -> bytes:
        return self._blob(key).download_as_bytes()

    def replace(self, key: str, data: bytes) -> None:
        blob = self._blob(key)
        blob.metadata = {SHA256_METADATA_KEY: sha256_hex(data)}
        blob.upload_from_string(data, content_type="application/octet-stream")

    def put_once(self, key: str, data: bytes) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        sha = sha256_hex(data)
        blob = self._blob(key)
        if not blob.exists():
            blob.metadata = {SHA256_METADATA_KEY: sha}
            try:
                # generation 0 = "only if no live object": GCS refuses the overwrite server-side
                blob.upload_from_string(data, content_type="application/octet-stream", if_generation_match=0)
                return True
            except PreconditionFailed:
                pass
        existing_blob = self.client.bucket(self.bucket).get_blob(self._key(key))
        existing = (existing_blob.metadata or {}).get(SHA256_METADATA_KEY) if existing_blob else None
        if existing is None and existing_blob is not None:
            existing = sha256_hex(existing_blob.download_as_bytes())
        if existing != sha and _is_content_addressed(key, sha):
            raise WriteOnceViolation(f"{self.locate(key)} holds bytes with SHA-256 {existing}, not {sha}: "
                                     "refusing to overwrite a write-once object")
        return False

    def unavailable_reason(self) -> str | None:
        try:
            next(iter(self.client.list_blobs(self.bucket, prefix=self.prefix, max_results=1)), None)
        except Exception as exc:  # the SDK raises many types (auth, not found, transport)
            return f"cannot list {self.locate()} ({type(exc).__name__}: {exc})"
        return None

    def list_objects(self, prefix: str = "", *, fingerprint: bool = True) -> Iterator[LandedObject]:
        """All pages of the bucket listing; the ETag is the content MD5 (the blob's etag for composites)."""
        blobs = self.client.list_blobs(self.bucket, prefix=self._key(prefix), page_size=LIST_PAGE_SIZE)
        for blob in sorted(blobs, key=lambda b: b.name):
            if blob.name.endswith("/"):
                continue
            modified_at = blob.updated.timestamp()
            etag = (blob.md5_hash or blob.etag or "") if fingerprint else ""
            yield LandedObject(blob.name[len(self.prefix):], modified_at, modified_at, etag, int(blob.size or 0))

    def open_seekable(self, key: str) -> BinaryIO:
        """Downloaded whole: GCS archives are small, and ranged reads differ between GCS and its emulators."""
        return io.BytesIO(self.read(key))
