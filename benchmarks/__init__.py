"""Benchmarks: each compares Stackyard with its anchors side by side, in one run."""
