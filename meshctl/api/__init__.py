"""Generated gRPC stubs of the mesh's wire contracts (control API, tap): no logic here."""
