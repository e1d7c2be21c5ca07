"""HTTP/2 and gRPC: the sans-IO core (h2), exchanges and relays, the upstream pool, dialing and framing."""
