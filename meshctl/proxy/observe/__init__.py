"""Observers of a request's outcome (tap) and the tap server."""
