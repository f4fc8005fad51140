"""A deployment's environment: data dir, refresh cron, live URLs and pace, defaults when unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import paths
from pipelines.deployment import (
    BASE_URL_ENV,
    CRON_ENV,
    DATA_DIR_ENV,
    PACE_ENV,
    WEEKLY_CRON,
    deployment,
)
from pipelines.refresh import RefreshError, emulator_paths, live_base_urls


def test_an_empty_environment_keeps_one_machine_and_the_real_apis() -> None:
    blank = {DATA_DIR_ENV: "", CRON_ENV: " ", BASE_URL_ENV: "", PACE_ENV: ""}
    for environ in ({}, blank):
        settings = deployment(environ)
        assert settings.data_dir == paths.DEFAULT_DATA_DIR
        assert settings.refresh_cron == WEEKLY_CRON == "0 3 * * 1"
        assert settings.base_urls == live_base_urls()
        assert settings.pace == 1.0


def test_a_demo_environment_ticks_every_minute_against_one_emulator(tmp_path: Path) -> None:
    settings = deployment(
        {
            DATA_DIR_ENV: str(tmp_path / "data"),
            CRON_ENV: "* * * * *",
            BASE_URL_ENV: "all=http://127.0.0.1:8765/ pubmed=http://127.0.0.1:9000",
            PACE_ENV: "0",
        }
    )
    assert settings.data_dir == tmp_path / "data"
    assert settings.refresh_cron == "* * * * *"
    expected = {s: "http://127.0.0.1:8765" + path for s, path in emulator_paths().items()}
    assert settings.base_urls == {**expected, "pubmed": "http://127.0.0.1:9000"}
    assert settings.pace == 0.0


@pytest.mark.parametrize("pace", ["fast", "-1", "nan"])
def test_a_pace_that_is_not_a_number_from_zero_up_is_refused(pace: str) -> None:
    with pytest.raises(RefreshError, match=f"{PACE_ENV}='{pace}': want a number >= 0"):
        deployment({PACE_ENV: pace})


def test_a_malformed_base_url_names_the_variable() -> None:
    with pytest.raises(RefreshError, match=f"{BASE_URL_ENV}: --base-url: unknown source 'nope'"):
        deployment({BASE_URL_ENV: "nope=http://x"})
