"""Training PyTorch models from SQL: CREATE MODEL, the DuckDB feed, the model registry."""
