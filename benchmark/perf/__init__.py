"""Benchmark scripts: ratios of ours against a bare PyTorch loop, measured in one run."""
