"""The gateway's read side: DuckDB views projected from every event stream."""
