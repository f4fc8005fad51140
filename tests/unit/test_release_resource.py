"""The release resource keeps a catalog password out of Dagster's run config."""

from __future__ import annotations

import pytest

from pipelines.release.publish import PublishError
from pipelines.resources import ReleaseResource


def test_catalog_url_with_a_password_is_refused_without_echoing_it() -> None:
    resource = ReleaseResource(catalog="postgresql://lake:S3cretPW@db.example:5432/lake")
    with pytest.raises(PublishError, match="PGPASSWORD") as refused:
        resource.outputs  # noqa: B018 - the property is what refuses
    assert "S3cretPW" not in str(refused.value)
    assert "postgresql://lake:***@db.example:5432/lake" in str(refused.value)


def test_catalog_url_without_a_password_is_used_as_given() -> None:
    url = "postgresql://lake@db.example:5432/lake"
    assert ReleaseResource(catalog=url).outputs.catalog_url == url
