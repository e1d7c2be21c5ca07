"""The booksapp demo: webapp → books → authors, plus the gRPC ratings service and a traffic generator.

Every service calls its downstreams through its own sidecar's outbound listener, naming the destination
in the Host header (or the gRPC :authority), exactly as an application inside the mesh would.
"""
