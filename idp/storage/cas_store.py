"""SQL storage of the cas front-end (tables registered on the shared metadata)."""
