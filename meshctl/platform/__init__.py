"""Where the mesh runs: the local platform (processes on loopback) or Kubernetes."""
