"""Benchmark evaluation: data, answer extraction, field-standard metrics, `ioa eval` and `ioa score`."""
