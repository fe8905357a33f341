"""Benchmarks for ``dedup``: corpora with ground truth, baselines, and the runner.

This package imports ``dedup``; ``dedup`` never imports it.
"""
