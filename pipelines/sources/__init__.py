"""One module per source: live paging over `pipelines.http`, and pure parsing of raw bodies."""
