"""Data validation: statistics, data schemas, anomalies, drift and skew."""
