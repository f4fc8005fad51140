"""Arrow schemas derived from the Pandera models, so Parquet types never drift from them."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow

_BY_DTYPE: dict[str, pa_arrow.DataType] = {
    "string": pa_arrow.string(),
    "string[python]": pa_arrow.string(),
    "Int64": pa_arrow.int64(),
    "Float64": pa_arrow.float64(),
    "boolean": pa_arrow.bool_(),
    "datetime64[ns]": pa_arrow.timestamp("ns"),
}
_BY_TAG: dict[str, pa_arrow.DataType] = {
    "list<string>": pa_arrow.list_(pa_arrow.string()),
    "date32": pa_arrow.date32(),
}


def arrow_schema(model: type[pa.DataFrameModel]) -> pa_arrow.Schema:
    """The Arrow schema of a table, column order as in the model."""
    fields = []
    for name, column in model.to_schema().columns.items():
        tag = (column.metadata or {}).get("arrow")
        arrow_type = _BY_TAG[tag] if tag else _BY_DTYPE[str(column.dtype)]
        fields.append(pa_arrow.field(name, arrow_type, nullable=column.nullable))
    return pa_arrow.schema(fields)


def to_arrow(frame: pd.DataFrame, model: type[pa.DataFrameModel]) -> pa_arrow.Table:
    """Convert a validated frame to Arrow with the model's exact types."""
    schema = arrow_schema(model)
    arrays = []
    for f in schema:
        series = frame[f.name]
        if pa_arrow.types.is_list(f.type):
            values = [list(v) for v in series]
            arrays.append(pa_arrow.array(values, type=f.type))
        elif pa_arrow.types.is_date32(f.type):
            dates = pd.to_datetime(series).dt.date
            arrays.append(pa_arrow.array(dates.where(series.notna(), None), type=f.type))
        else:
            arrays.append(pa_arrow.Array.from_pandas(series, type=f.type))
    return pa_arrow.Table.from_arrays(arrays, schema=schema)
