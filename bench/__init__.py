"""Throughput benchmarks of the metrics service (``make bench``)."""
