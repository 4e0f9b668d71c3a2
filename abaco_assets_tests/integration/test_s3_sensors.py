"""Sensors and object storage against a real S3 wire protocol on 127.0.0.1 (moto in server mode).

Nothing patches boto3: the platform's own clients talk HTTP to the local
server through AWS_ENDPOINT_URL, exactly as they would to AWS or any
S3-compatible store.  Landing, raw and quarantine live in the bucket; the
typed zone and the marts stay local (DuckDB).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import re
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import dagster as dg
import duckdb
import pytest
from botocore.exceptions import ClientError

from abaco_assets.lib.storage import WriteOnceViolation, zone_at
from abaco_assets_tests.conftest import run_abaco
from abaco_assets_tests.fixtures.landing_writer import CASCADE_FILE_NAMES

moto_server = pytest.importorskip("moto.server")

pytestmark = pytest.mark.e2e
TAPE_DAY = "2026-10-31"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """A moto S3 server on a free loopback port, and the AWS environment pointing at it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per HTTP request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    no_files = tmp_path_factory.mktemp("aws") / "none"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "abaco-test",
                            "AWS_SECRET_ACCESS_KEY": "abaco-test", "AWS_DEFAULT_REGION": "us-east-1",
                            "AWS_CONFIG_FILE": str(no_files), "AWS_SHARED_CREDENTIALS_FILE": str(no_files)}.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
            patch.delenv(name, raising=False)
        yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def s3(s3_endpoint):
    return boto3.client("s3", endpoint_url=s3_endpoint)


def make_bucket(s3, name: str) -> str:
    s3.create_bucket(Bucket=name)
    return name


def put(s3, bucket: str, key: str, data: bytes) -> str:
    return s3.put_object(Bucket=bucket, Key=key, Body=data)["ETag"].strip('"')


class SensorProbe:
    """Evaluates one landing sensor the way the daemon does, carrying the cursor between ticks."""

    def __init__(self, source: str, settings, instance):
        from abaco_assets.defs.ingest.sensors import sensor_for

        self.sensor, self.settings, self.instance, self.cursor = sensor_for(source), settings, instance, None

    def tick(self) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(instance=self.instance, cursor=self.cursor,
                                          resources={"settings": self.settings})
        result = self.sensor(context)
        self.cursor = result.cursor
        return list(result.run_requests or [])


def settings_for(bucket: str, data_dir: Path, lookback_seconds: int = 3600):
    from abaco_assets.resources import AbacoSettings

    return AbacoSettings(landing_root=f"s3://{bucket}/landing", raw_root=f"s3://{bucket}/raw",
                         quarantine_root=f"s3://{bucket}/quarantine", data_dir=str(data_dir),
                         landing_lookback_seconds=lookback_seconds)


def tape_zip(tables: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for table, data in tables.items():
            archive.writestr(CASCADE_FILE_NAMES[table], data)
    return buffer.getvalue()


def test_each_delivery_version_starts_exactly_one_run(s3, tmp_path, capsys):
    bucket = make_bucket(s3, "abaco-sensor-versions")
    settings = settings_for(bucket, tmp_path / "data")
    with dg.instance_for_test() as instance:
        cascade, collections = SensorProbe("cascade", settings, instance), SensorProbe("collections", settings, instance)
        assert cascade.tick() == [] and collections.tick() == []

        tables = ["loan_data", "customer_data", "payment_schedule", "historic_real_payment"]
        etags = {t: put(s3, bucket, f"landing/cascade/{TAPE_DAY}/{CASCADE_FILE_NAMES[t]}", f"{t} v1".encode())
                 for t in tables[:3]}
        assert cascade.tick() == []  # three of four required tables: waiting, not once per file
        etags[tables[3]] = put(s3, bucket, f"landing/cascade/{TAPE_DAY}/{CASCADE_FILE_NAMES[tables[3]]}", b"hrp v1")
        collections_key = "landing/collections/2026-10-30/collections_20261030.csv"
        collections_etag = put(s3, bucket, collections_key, b"payment_id\n")

        [tape_request] = cascade.tick()
        assert tape_request.partition_key == TAPE_DAY
        assert tape_request.run_key.startswith(f"cascade/{TAPE_DAY}/4-files@")
        assert tape_request.tags["abaco/delivery"] == f"cascade/{TAPE_DAY}"
        [daily_request] = collections.tick()
        assert daily_request.partition_key == "2026-10-30"
        assert daily_request.run_key == f"collections/2026-10-30/collections_20261030.csv@{collections_etag}"

        assert cascade.tick() == [] and collections.tick() == []  # evaluated again: nothing
        put(s3, bucket, collections_key, b"payment_id\n")  # identical bytes re-uploaded
        put(s3, bucket, f"landing/cascade/{TAPE_DAY}/{CASCADE_FILE_NAMES['loan_data']}", b"loan_data v1")
        assert cascade.tick() == [] and collections.tick() == []

        changed_etag = put(s3, bucket, collections_key, b"payment_id\nP1\n")  # changed bytes: a restatement
        [restatement] = collections.tick()
        assert restatement.partition_key == "2026-10-30" and restatement.run_key.endswith(changed_etag)
        assert restatement.run_key != daily_request.run_key

        # the zip form of a tape is one delivery, judged by its members
        zipped = tape_zip({t: f"{t} zipped".encode() for t in tables})
        zip_etag = put(s3, bucket, "landing/cascade/2026-09-30/Abaco - Loan Tape.zip", zipped)
        [zip_request] = cascade.tick()
        assert zip_request.partition_key == "2026-09-30"
        assert zip_request.run_key == f"cascade/2026-09-30/Abaco - Loan Tape.zip@{zip_etag}"

        put(s3, bucket, "landing/collections/2026-10-30/notes.txt", b"call the bank")
        capsys.readouterr()
        assert collections.tick() == []
        assert re.search(r"WARNING - skipped landing key s3://abaco-sensor-versions/landing/collections/2026-10-30/"
                         r"notes\.txt: file name matches no collections table", capsys.readouterr().err)


def test_every_key_of_a_multi_page_listing_is_seen(s3, tmp_path):
    bucket = make_bucket(s3, "abaco-sensor-pages")
    days = [dt.date(2021, 1, 1) + dt.timedelta(days=i) for i in range(1500)]
    keys = [f"landing/collections/{d.isoformat()}/collections_{d:%Y%m%d}.csv" for d in days]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda key: put(s3, bucket, key, key.encode()), keys))
    first_page = s3.list_objects_v2(Bucket=bucket, Prefix="landing/collections/")
    assert first_page["IsTruncated"] and first_page["KeyCount"] == 1000  # the listing really has pages
    with dg.instance_for_test() as instance:
        probe = SensorProbe("collections", settings_for(bucket, tmp_path / "data"), instance)
        requests = probe.tick()
        assert sorted(r.partition_key for r in requests) == [d.isoformat() for d in days]
        assert len({r.run_key for r in requests}) == 1500
        assert probe.tick() == []


def test_keys_landing_in_the_cursors_second_are_picked_up(s3, tmp_path):
    bucket = make_bucket(s3, "abaco-sensor-same-second")
    with dg.instance_for_test() as instance:
        probe = SensorProbe("delinquency", settings_for(bucket, tmp_path / "data"), instance)
        for attempt in range(5):
            time.sleep(1.02 - time.time() % 1)  # start just after a second boundary
            first = f"landing/delinquency/2026-10-0{attempt + 2}/delinquency_2026100{attempt + 2}.csv"
            # the second key sorts *before* the first: a (LastModified, key) cursor alone would skip it
            second = f"landing/delinquency/2026-09-0{attempt + 2}/delinquency_2026090{attempt + 2}.csv"
            put(s3, bucket, first, b"as_of_date\n")
            assert [r.partition_key for r in probe.tick()] == [f"2026-10-0{attempt + 2}"]
            put(s3, bucket, second, b"as_of_date\n")
            stamps = {s3.head_object(Bucket=bucket, Key=k)["LastModified"] for k in (first, second)}
            requests = probe.tick()
            assert [r.partition_key for r in requests] == [f"2026-09-0{attempt + 2}"]
            if len(stamps) == 1:
                return  # both keys shared one LastModified second, and the second was still seen
        pytest.fail("could not upload two keys within one second in five attempts")


def test_raw_zone_in_s3_is_write_once_and_content_addressed(s3):
    bucket = make_bucket(s3, "abaco-raw-write-once")
    raw = zone_at(f"s3://{bucket}/raw")
    data = b"Loan ID\nL1\n"
    key = f"cascade/loan_data/{TAPE_DAY}/{hashlib.sha256(data).hexdigest()}.csv"
    assert raw.put_once(key, data) is True
    assert raw.put_once(key, data) is False  # identical: nothing written
    assert raw.read(key) == data and raw.exists(key) and raw.locate(key) == f"s3://{bucket}/raw/{key}"
    with pytest.raises(ClientError) as refused:  # the server itself refuses a conditional overwrite
        s3.put_object(Bucket=bucket, Key=f"raw/{key}", Body=b"x", IfNoneMatch="*")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert raw.read(key) == data
    # bytes that do not match their content-addressed name are evidence: reported, never overwritten
    s3.put_object(Bucket=bucket, Key=f"raw/{key}", Body=b"tampered")
    with pytest.raises(WriteOnceViolation, match="refusing to overwrite"):
        raw.put_once(key, data)
    assert raw.read(key) == b"tampered"


@pytest.fixture(scope="module")
def generated_landing(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("generated") / "landing"
    made = run_abaco("generate", "--out", str(landing), "--loans", "150", "--months", "3", "--seed", "5",
                     "--delinquency-cadence", "month-end")
    assert made.returncode == 0, made.stderr
    return landing


def upload_tree(s3, bucket: str, prefix: str, root: Path) -> int:
    files = [p for p in sorted(root.rglob("*")) if p.is_file()]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda p: put(s3, bucket, f"{prefix}/{p.relative_to(root).as_posix()}", p.read_bytes()), files))
    return len(files)


def requested_keys(evaluation, defs) -> list[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    return [key for key in graph.get_all_asset_keys() if graph.get(key).is_materializable
            and evaluation.get_num_requested(key)]


def run_requests(defs, instance, source: str, requests: list[dg.RunRequest]):
    """Execute sensor run requests the way the daemon would launch them (one run each, the request's tags)."""
    job = defs.resolve_job_def(f"ingest_{source}_job")
    return [job.execute_in_process(instance=instance, partition_key=r.partition_key, tags=r.tags, run_config=QUIET,
                                   raise_on_error=False) for r in requests]


def test_abaco_run_then_sensors_and_automation_with_landing_and_raw_in_s3(s3, tmp_path, generated_landing,
                                                                         monkeypatch):
    """`abaco run --landing s3://…` ingests what is there and builds the marts; the October tape and
    delinquency file arrive later and the sensors, the ingest runs and the automation take it from there."""
    bucket = make_bucket(s3, "abaco-e2e")
    held_back = {p for p in generated_landing.rglob("*") if p.is_file() and "2026-10-31" in p.parts
                 and p.parts[-3] in ("cascade", "delinquency")}
    staged = generated_landing.parent / "staged"
    for path in generated_landing.rglob("*"):
        if path.is_file() and path not in held_back:
            target = staged / path.relative_to(generated_landing)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    uploaded = upload_tree(s3, bucket, "landing", staged)
    data = tmp_path / "data"
    environment = {"ABACO_LANDING": f"s3://{bucket}/landing", "ABACO_RAW_ROOT": f"s3://{bucket}/raw",
                   "ABACO_QUARANTINE_ROOT": f"s3://{bucket}/quarantine", "ABACO_DATA": str(data),
                   "DAGSTER_HOME": str(data / "dagster_home"), "ABACO_PII_HMAC_KEY": "test-key"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    done = run_abaco("run", "--landing", f"s3://{bucket}/landing")
    assert done.returncode == 0, done.stdout + done.stderr
    deliveries = len({p.parent for p in staged.rglob("*") if p.is_file()})  # one per <source>/<date> folder
    assert f"landing s3://{bucket}/landing: {uploaded} files in {deliveries} deliveries" in done.stdout
    assert "0 rejected" in done.stdout and "portfolio KPIs, month_end 2026-09-30" in done.stdout
    # raw bytes are in the bucket, content-addressed; nothing raw on local disk
    tapes = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="raw/cascade/loan_data/")["Contents"]]
    assert len(tapes) == 2
    assert tapes[0].endswith(f"/{hashlib.sha256(s3.get_object(Bucket=bucket, Key=tapes[0])['Body'].read()).hexdigest()}.csv")
    assert not list((data / "raw").glob("*/*/*/*.csv"))
    missing = run_abaco("run", "--landing", "s3://abaco-no-such-bucket/landing")
    assert missing.returncode == 2 and "cannot list s3://abaco-no-such-bucket/landing/" in missing.stderr

    from abaco_assets.definitions import defs
    from abaco_assets.resources import AbacoSettings

    instance = dg.DagsterInstance.get()  # the instance `abaco run` used, as `dagster dev` would
    try:
        idle = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the daemon's first tick
        probes = {source: SensorProbe(source, AbacoSettings(), instance)
                  for source in ("cascade", "collections", "delinquency")}
        # a fresh cursor over a bucket `abaco run` already ingested: nothing is requested twice
        assert all(probe.tick() == [] for probe in probes.values())

        upload_tree(s3, bucket, "landing", generated_landing)  # the October tape and delinquency arrive
        assert probes["collections"].tick() == []
        requested = {source: probes[source].tick() for source in ("cascade", "delinquency")}
        assert {s: [r.partition_key for r in rs] for s, rs in requested.items()} == {
            "cascade": ["2026-10-31"], "delinquency": ["2026-10-31"]}
        for source, requests in requested.items():
            assert all(run.success for run in run_requests(defs, instance, source, requests))
        assert len(s3.list_objects_v2(Bucket=bucket, Prefix="raw/cascade/loan_data/")["Contents"]) == 3

        # the marts follow by declarative automation
        evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=idle.cursor)
        wanted = requested_keys(evaluation, defs)
        assert dg.AssetKey(["marts", "kpi_portfolio_monthly"]) in wanted
        assert not any(key.path[0] == "raw" for key in wanted)
        build = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, asset_selection=wanted, run_config=QUIET, raise_on_error=False,
            tags={"abaco/trigger": "automation"})
        assert build.success
        with duckdb.connect(str(data / "warehouse.duckdb"), read_only=True) as con:
            month_ends = [row[0].isoformat() for row in con.execute(
                "select month_end from marts.kpi_portfolio_monthly order by 1").fetchall()]
        assert month_ends == ["2026-08-31", "2026-09-30", "2026-10-31"]
        evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
        assert evaluation.total_requested == 0  # nothing new upstream

        # a restated tape that breaks its contract: one run, quarantined in S3, and the marts are held
        tape_key = f"landing/cascade/2026-10-31/{CASCADE_FILE_NAMES['loan_data']}"
        good_tape = s3.get_object(Bucket=bucket, Key=tape_key)["Body"].read()
        put(s3, bucket, tape_key.replace("_Table.csv", "_Table (2).csv"),
            good_tape.replace(b"Outstanding Loan Value", b"Outstanding Value", 1))
        [restated] = probes["cascade"].tick()
        [run] = run_requests(defs, instance, "cascade", [restated])
        assert any(not e.passed for e in run.get_asset_check_evaluations() if e.check_name == "contract")
        quarantined = s3.list_objects_v2(Bucket=bucket, Prefix="quarantine/cascade/loan_data/2026-10-31/")
        assert any(o["Key"].endswith(".error.json") for o in quarantined.get("Contents", []))
        held = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=evaluation.cursor)
        assert held.total_requested == 0  # a failed blocking check upstream holds every model

        # the sender fixes it (a newer, valid copy): the check passes again and the marts may follow
        put(s3, bucket, tape_key.replace("_Table.csv", "_Table (3).csv"), good_tape)
        [fixed] = probes["cascade"].tick()
        [run] = run_requests(defs, instance, "cascade", [fixed])
        assert run.success
        released = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=held.cursor)
        assert dg.AssetKey(["marts", "kpi_portfolio_monthly"]) in requested_keys(released, defs)
    finally:
        instance.dispose()
