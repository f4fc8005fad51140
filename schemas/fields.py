"""Field helpers shared by every table model.

Pandas has no native list dtype, so list columns are `object` Series checked element-wise and
tagged with `metadata={"arrow": "list<string>"}`; dates are `datetime64` tagged `date32`. The
Arrow schema of every published Parquet file is derived from these tags (see `schemas.arrow`).
"""

from __future__ import annotations

from typing import Any

import pandera.pandas as pa
from pandera.extensions import register_check_method


@register_check_method(check_type="element_wise")
def is_str_list(value: Any) -> bool:
    """True for a list (or tuple) whose items are all non-empty strings."""
    return isinstance(value, list | tuple) and all(isinstance(v, str) and v for v in value)


def text(description: str, *, nullable: bool = True, **checks: Any) -> Any:
    """A string column."""
    return pa.Field(nullable=nullable, description=description, **checks)


NULLABLE_KEY = "nullable_key"
"""Field metadata tag of a primary-key column that may be null (see `nullable_key_part`)."""


def nullable_key_part(description: str) -> Any:
    """A string primary-key column that may be null, declared so on purpose.

    Every other key column must be non-null; this tag is the opt-in the rules read
    (`pipelines.rules`), and uniqueness then counts null as a value.
    """
    return pa.Field(nullable=True, description=description, metadata={NULLABLE_KEY: True})


def str_list(description: str) -> Any:
    """A list<string> column: never null, an empty list when nothing is known."""
    return pa.Field(
        nullable=False, is_str_list=(), description=description, metadata={"arrow": "list<string>"}
    )


def day(description: str, *, nullable: bool = True) -> Any:
    """A calendar date (stored as Arrow date32)."""
    return pa.Field(nullable=nullable, description=description, metadata={"arrow": "date32"})


def one_of(values: tuple[str, ...], description: str, *, nullable: bool = False) -> Any:
    """A categorical string column restricted to `values`."""
    return pa.Field(
        isin=list(values),
        nullable=nullable,
        description=f"{description} One of: {', '.join(values)}.",
    )
