"""pyipld benchmarks: ``python -m benchmarks.bench_<area> [--smoke]`` (see README.md)."""
