"""The data side of tap, without Textual and without the CLI; a UI builds on these:

- `store.TapStore`: bounded, thread-safe; `add(event)`, `exchanges(keep, last=)`, `get(instance, id)`,
  `instances()` (per-proxy state, reason, drop counts), `evicted`, `version` (poll once per frame) and
  `subscribe(listener)`.
- `exchange.Exchange`: one request's events paired (status, latency_us, success, trace_id).
- `filter.parse_filter(text, namespace)` / `flags_filter(...)`: the expression language; a `Filter` is
  a predicate over exchanges (`decide` is three-valued) and `to_proto()` is the proxy's match.
- `client.FanIn`: one Observe stream per instance into one queue (`TapEvent` or `StateChange`).
- `render` (text/wide/json lines), `capture` (JSONL), `replay`, `har` (HAR 1.2), `top`, `profile`.
"""
