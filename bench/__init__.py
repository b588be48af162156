"""Benchmarks: scripts that measure kefu and write results files; see docs/benchmarks.md."""
