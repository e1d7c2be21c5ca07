"""The wire contract of the demo's gRPC ratings service (generated stubs are committed)."""
