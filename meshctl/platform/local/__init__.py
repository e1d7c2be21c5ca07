"""The local platform: the whole mesh as processes on loopback addresses, state under one directory."""
