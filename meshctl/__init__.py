"""meshctl: a service mesh with its own sidecar proxy and control plane, and the tools to operate it."""

__version__ = "0.1.0"
