"""The lake's Parquet files in an object store: two releases published to S3, both read back.

moto's S3 server answers on loopback with the real S3 protocol; DuckDB reaches it through the
httpfs extension with the credentials and endpoint of the standard AWS variables.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.release.catalog import CatalogError, s3_secret_sql
from tests.release._snapshots import run_cli, study_counts, variant_snapshot
from tests.release.conftest import ObjectStore

BASE = "2026.11.25"


def test_secret_points_at_an_s3_compatible_endpoint_path_style() -> None:
    sql = s3_secret_sql(
        {
            "AWS_ACCESS_KEY_ID": "AKID",
            "AWS_SECRET_ACCESS_KEY": "it's-secret",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL": "https://minio.internal:9000",
        }
    )
    assert "KEY_ID 'AKID'" in sql and "SECRET 'it''s-secret'" in sql
    assert "REGION 'eu-west-1'" in sql and "ENDPOINT 'minio.internal:9000'" in sql
    assert "URL_STYLE 'path'" in sql and "USE_SSL true" in sql


def test_secret_without_endpoint_speaks_to_aws_and_bad_endpoint_is_refused() -> None:
    sql = s3_secret_sql({"AWS_REGION": "us-east-1"})
    assert "ENDPOINT" not in sql and "URL_STYLE" not in sql and "REGION 'us-east-1'" in sql
    with pytest.raises(CatalogError, match="is not http"):
        s3_secret_sql({"AWS_ENDPOINT_URL": "minio:9000"})


@pytest.mark.slow
def test_two_releases_with_data_files_in_s3_read_back_with_time_travel(
    object_store: ObjectStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"
    url = f"s3://{object_store.bucket}/lake"
    where = ["--data-dir", str(data_dir), "--catalog-data-path", url]
    assert f"published release {BASE}" in run_cli(capsys, "build", *where)
    first_keys = object_store.object_keys()
    assert first_keys and all(k.startswith("lake/") and k.endswith(".parquet") for k in first_keys)
    assert not list((data_dir / "lake").rglob("*.parquet")), "no data file may stay local"

    variant = variant_snapshot(tmp_path / "variant")
    out = run_cli(capsys, "build", "--snapshot", str(variant), *where)
    assert f"published release {BASE}.1" in out
    assert len(object_store.object_keys()) > len(first_keys)

    counts = study_counts(capsys, (BASE, f"{BASE}.1"), *where)
    assert counts[BASE] == {"n": 79, "dropped": 1}
    assert counts[f"{BASE}.1"] == {"n": 78, "dropped": 0}
