"""The curated step's share of the warehouse's DuckDB memory, computed from the limit as DuckDB
prints it."""

import duckdb

from pipelines.assets.curated import share_of


def test_a_share_of_a_limit_whatever_unit_duckdb_prints() -> None:
    assert share_of("488.2 MiB", 0.75) == "374937 KiB"
    assert share_of("1.8 GiB", 0.5) == "943718 KiB"
    assert share_of("512.0 KiB", 0.5) == "256 KiB"


def test_duckdb_takes_the_share_as_given() -> None:
    with duckdb.connect(config={"memory_limit": "512MB"}) as con:
        (whole,) = con.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
        con.execute("SET memory_limit = ?", [share_of(str(whole), 0.75)])
        (shared,) = con.execute("SELECT current_setting('memory_limit')").fetchone() or ("",)
    assert (whole, shared) == ("488.2 MiB", "366.1 MiB")
