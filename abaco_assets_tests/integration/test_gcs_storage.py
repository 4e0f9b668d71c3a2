"""The GCS backend against a GCS JSON-API emulator on 127.0.0.1 (gcp-storage-emulator, in memory).

The emulator does not enforce ``ifGenerationMatch`` (real GCS does), so the
write-once test here proves the existence check and the tamper detection;
the server-side refusal is proven against S3 in test_s3_sensors.py.
"""

from __future__ import annotations

import hashlib
import io
import socket
import zipfile

import dagster as dg
import pytest

from abaco_assets.lib.landing import scan_landing
from abaco_assets.lib.storage import WriteOnceViolation, landing_store_at, zone_at
from abaco_assets_tests.fixtures.landing_writer import CASCADE_FILE_NAMES

emulator = pytest.importorskip("gcp_storage_emulator.server")

BUCKET = "abaco-partner"


@pytest.fixture(scope="module")
def gcs_bucket():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        patch.setenv("GOOGLE_CLOUD_PROJECT", "abaco-test")
        patch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        from google.cloud import storage

        yield storage.Client(project="abaco-test").bucket(BUCKET)
    server.stop()


def upload(bucket, key: str, data: bytes) -> None:
    bucket.blob(key).upload_from_string(data)


def test_gcs_zone_is_write_once_and_reports_tampering(gcs_bucket):
    raw = zone_at(f"gs://{BUCKET}/raw")
    data = b"Loan ID\nL1\n"
    key = f"cascade/loan_data/2026-10-31/{hashlib.sha256(data).hexdigest()}.csv"
    assert raw.put_once(key, data) is True and raw.put_once(key, data) is False
    assert raw.read(key) == data and raw.exists(key) and not raw.exists("cascade/nothing.csv")
    assert raw.locate(key) == f"gs://{BUCKET}/raw/{key}"
    upload(gcs_bucket, f"raw/{key}", b"tampered")
    with pytest.raises(WriteOnceViolation):
        raw.put_once(key, data)
    assert raw.read(key) == b"tampered"


def test_gcs_landing_feeds_the_scan_and_the_sensor(gcs_bucket, tmp_path):
    from abaco_assets.defs.ingest.sensors import sensor_for
    from abaco_assets.resources import AbacoSettings

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as tape:
        for table in ("loan_data", "customer_data", "payment_schedule", "historic_real_payment"):
            tape.writestr(CASCADE_FILE_NAMES[table], f"{table}\n".encode())
    upload(gcs_bucket, "landing/cascade/2026-10-31/tape.zip", archive.getvalue())
    upload(gcs_bucket, "landing/collections/2026-10-30/collections_20261030.csv", b"payment_id\n")
    upload(gcs_bucket, "landing/collections/2026-10-30/unexpected.pdf", b"%PDF")

    scan = scan_landing(f"gs://{BUCKET}/landing")
    assert sorted(f.table for f in scan.files) == ["collections", "customer_data", "historic_real_payment",
                                                   "loan_data", "payment_schedule"]
    loan_data = next(f for f in scan.files if f.table == "loan_data")
    assert loan_data.read() == b"loan_data\n"  # a zip member, read through the store
    assert [s.key for s in scan.skipped] == ["collections/2026-10-30/unexpected.pdf"]
    assert landing_store_at(f"gs://{BUCKET}/landing").unavailable_reason() is None

    settings = AbacoSettings(landing_root=f"gs://{BUCKET}/landing", data_dir=str(tmp_path / "data"))
    with dg.instance_for_test() as instance:
        cursors = {}

        def tick(source):
            result = sensor_for(source)(dg.build_sensor_context(instance=instance, cursor=cursors.get(source),
                                                                resources={"settings": settings}))
            cursors[source] = result.cursor
            return [(r.partition_key, r.run_key) for r in result.run_requests or []]

        [(day, run_key)] = tick("cascade")
        assert day == "2026-10-31" and run_key.startswith("cascade/2026-10-31/tape.zip@")
        [(day, first_key)] = tick("collections")
        assert day == "2026-10-30" and tick("collections") == []
        upload(gcs_bucket, "landing/collections/2026-10-30/collections_20261030.csv", b"payment_id\n")
        assert tick("collections") == []  # same bytes again: same MD5
        upload(gcs_bucket, "landing/collections/2026-10-30/collections_20261030.csv", b"payment_id\nP1\n")
        [(day, changed_key)] = tick("collections")
        assert day == "2026-10-30" and changed_key != first_key
