"""The benchmark suite behind benchmarks/run.sh (see benchmarks/README.md)."""
