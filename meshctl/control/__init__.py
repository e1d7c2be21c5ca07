"""The control plane: identity (a CA issuing workload certificates) and discovery (snapshots of the mesh)."""
