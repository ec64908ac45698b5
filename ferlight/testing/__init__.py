"""Synthetic data that tests and benchmarks share: real-face video clips with ground truth.

Needs scikit-image and matplotlib (the test extra) for the photographs and backgrounds they ship.
"""
