"""Meter readings into the raw layer: smart-me cloud, CSV and MSCONS files, ingest shards."""
