"""Benchmarks: one module a part, each `run(args) -> str` returning a markdown table."""
