"""The sidecar proxy: inbound (mTLS → app) and outbound (app → mTLS peer) HTTP/1.1 and HTTP/2 data plane."""
