"""Golden signals of the mesh from its Prometheus: `meshctl routes`, `meshctl stat` and `meshctl profile`.

PromQL builders, result models and renderers are pure; only `prometheus` talks to the network. Every
command asks at most three PromQL queries, whatever the number of routes or workloads: the queries
aggregate `by (rt_route)` (or by workload) and percentiles are computed here from the bucket counts.
"""
