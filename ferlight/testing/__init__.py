"""What tests and benchmarks share: synthetic data (real-face video clips and still photos with
ground truth) and real PostgreSQL and MLflow servers that tests start and stop (servers).

Needs scikit-image and matplotlib (the test extra) for the photographs and backgrounds they ship,
and psycopg for the servers.
"""
