"""`make bench`: the network, a bare nameko RPC echo and a Flask+PostgreSQL
monolith under the same locust load; results in docs/benchmarks.md."""
