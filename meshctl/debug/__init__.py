"""Debug sidecars: packet captures of an instance's plaintext legs (app ↔ proxy), their pcap streams and
their decoding into HTTP requests and responses with tshark. No CLI, no platform: both drive it."""
