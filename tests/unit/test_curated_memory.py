"""The curated step's share of the warehouse's DuckDB memory, computed from the limit as DuckDB
prints it."""

import duckdb

from pipelines.assets.curated import share_of
from pipelines.warehouse import duckdb_setting


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


def test_a_memory_limit_put_back_reads_as_before_however_often() -> None:
    """DuckDB prints a size cut to a tenth of its unit: set back as printed, the limit shrank
    by 0.1 MiB each time it was lowered for a block."""
    for limit, printed in (("512MB", "488.2 MiB"), ("2GB", "1.8 GiB")):
        with duckdb.connect(config={"memory_limit": limit}) as con:
            for _ in range(5):
                with duckdb_setting(con, "memory_limit", "100MB"):
                    pass
            assert con.execute("SELECT current_setting('memory_limit')").fetchone() == (printed,)
