"""Two real releases built into one data dir: the bundled snapshot, then an edited copy.

The copy differs by one ClinicalTrials.gov study whose status changed and one study deleted, so
the second build (same capture date, different tables) publishes `<date>.1`.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines import paths
from pipelines.build import build
from pipelines.release.publish import DataDir

EDITED_STUDY = "NCT06089980"
EDITED_STATUS = "COMPLETED"
DELETED_STUDY = "NCT07204171"
FIRST_VERSION = "2026.11.25"
SECOND_VERSION = "2026.11.25.1"


@dataclass(frozen=True)
class TwoReleases:
    """A data dir with two published releases and where their folders are."""

    data_dir: Path
    first: Path
    second: Path


def edit_snapshot(snapshot: Path) -> None:
    """Change one study's overallStatus and delete another study's file."""
    edited = snapshot / "clinicaltrials" / f"{EDITED_STUDY}.json"
    study = json.loads(edited.read_text(encoding="utf-8"))
    protocol = study.get("protocolSection", study)
    protocol["statusModule"]["overallStatus"] = EDITED_STATUS
    edited.write_text(json.dumps(study, indent=2), encoding="utf-8")
    (snapshot / "clinicaltrials" / f"{DELETED_STUDY}.json").unlink()


@pytest.fixture(scope="session")
def two_releases(tmp_path_factory: pytest.TempPathFactory, bundled_build: Path) -> TwoReleases:
    """The bundled snapshot's release (a copy of the run's one build), then the edited copy's,
    built into the same data dir."""
    root = tmp_path_factory.mktemp("releases")
    data_dir = Path(shutil.copytree(bundled_build, root / "data"))
    snapshot = root / "snapshot"
    shutil.copytree(paths.BUNDLED_SNAPSHOT, snapshot)
    assert [p.name for p in (data_dir / "releases").iterdir()] == [FIRST_VERSION]
    edit_snapshot(snapshot)
    assert build(snapshot, DataDir(data_dir)).version == SECOND_VERSION
    releases = data_dir / "releases"
    return TwoReleases(data_dir, releases / FIRST_VERSION, releases / SECOND_VERSION)


@pytest.fixture
def release_copy(two_releases: TwoReleases, tmp_path: Path) -> Path:
    """A private copy of the first release, safe to damage."""
    return Path(shutil.copytree(two_releases.first, tmp_path / FIRST_VERSION))


@dataclass(frozen=True)
class ObjectStore:
    """An S3-compatible server on loopback with one empty bucket, and a client to look inside."""

    endpoint: str
    bucket: str
    client: Any

    def object_keys(self) -> list[str]:
        listed = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))


@pytest.fixture
def object_store(monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
    """moto's S3 server (real HTTP, the S3 protocol) and the AWS variables that point at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        credentials = {
            "AWS_ACCESS_KEY_ID": "kratom-test-key",
            "AWS_SECRET_ACCESS_KEY": "kratom-test-secret",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": endpoint,
        }
        for name, value in credentials.items():
            monkeypatch.setenv(name, value)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
            region_name=credentials["AWS_REGION"],
        )
        # moto keeps buckets for the whole process: a fresh bucket per test starts empty.
        bucket = f"kratom-lake-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)
        yield ObjectStore(endpoint, bucket, client)
    finally:
        server.stop()
