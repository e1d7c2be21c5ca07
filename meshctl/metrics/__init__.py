"""Proxy metrics in linkerd2-proxy's names, their Prometheus exposition, and the admin endpoint.

`registry` (ProxyMetrics, RouteStats) has no third-party imports; `admin` (the HTTP server) imports
httptools, so import it where the server is started.
"""
