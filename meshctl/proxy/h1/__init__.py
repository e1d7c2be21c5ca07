"""HTTP/1.1: the sans-IO codec (httptools), the per-request exchange, and the socket glue both ways."""
