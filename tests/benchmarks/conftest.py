# The benchmark suite runs through `make bench` (tests/benchmarks/run.py), never under pytest:
# it starts servers, generates a large database and takes minutes.
collect_ignore_glob = ["*.py"]
