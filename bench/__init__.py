"""Benchmarks of meshctl: an open-loop load driver and the job that compares the proxy with its peers."""
