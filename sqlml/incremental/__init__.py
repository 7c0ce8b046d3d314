"""Incremental CNN inference (Krypton): video ingest, update patches, materialized states."""
