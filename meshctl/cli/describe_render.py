"""Renderers of `meshctl describe`: text (kubectl describe's layout) and a JSON/YAML document.

Pure functions of a Description and its Live state: no I/O, no clock, so golden files pin their bytes.
Resources that could not be read are diagnostics: the command writes them to stderr (JSON keeps them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from meshctl.observe.describe import Description, Finding, Origin
from meshctl.observe.describe_live import Live, live_document

DEFAULTS_NOTE = "default: the mesh's own setting, where no resource says otherwise"


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def _findings(findings: Sequence[Finding], numbers: dict[Origin, int]) -> list[str]:
    """One row per finding; FROM is the number of its resource in the From: list, or "default"."""
    rows = [["ASPECT", "SUBJECT", "FROM", "SETTING"]]
    rows += [[f.aspect, f.subject, f"[{numbers[f.origin]}]" if f.origin in numbers else "default", f.setting]
             for f in findings]  # fmt: skip
    return _table(rows)


def _live_lines(live: Live) -> list[str]:
    lines = ["Live (from the proxies' admin endpoints):"]
    if live.instances:
        rows = [["INSTANCE", "READY", "SNAPSHOT"]]
        rows += [[s.pod, "-" if s.ready is None else "yes" if s.ready else "no", str(s.snapshot or "-")]
                 for s in live.instances]  # fmt: skip
        lines += _table(rows)
    for authority, entries in live.endpoints.items():
        seen = f" (as {live.endpoints_from} sees them)" if live.endpoints_from else ""
        lines.append(f"  Endpoints of {authority}{seen}: {', '.join(entries) if entries else 'none ready'}")
    if live.breakers:
        lines.append("  Circuit breakers (in the clients' proxies):")
        rows = [["CLIENT", "ENDPOINT", "POD", "STATE", "FAILURES IN A ROW", "EJECTED FOR", "EJECTIONS"]]
        for breaker in live.breakers:
            if not breaker.verdicts:
                rows.append([breaker.client, "-", "-", "no failure yet", "-", "-", str(breaker.ejections)])
            for verdict in breaker.verdicts:
                left = f"{verdict.ejected_for_s:.1f}s" if verdict.state == "ejected" else "-"
                rows.append([breaker.client, verdict.endpoint, verdict.pod or "-", verdict.state,
                             str(verdict.failures_in_a_row), left, str(breaker.ejections)])  # fmt: skip
        lines += _table(rows, "    ")
    elif live.instances or live.endpoints:
        lines.append("  Circuit breakers: none has seen a request to it yet (or no failureAccrual)")
    for pod, why in live.unreachable.items():
        lines.append(f"  {pod}: not read ({why})")
    return lines


def render_text(description: Description, live: Live | None) -> str:
    workload = description.workload
    rows = [
        ["Name:", workload.target],
        ["Namespace:", workload.namespace],
        ["Services:", ", ".join(workload.services) or "none: no service selects its pods"],
        ["Service accounts:", ", ".join(workload.service_accounts) or "-"],
        ["Instances:", ", ".join(workload.instances) or "none meshed"],
    ]
    lines = _table(rows, "")
    origins = description.origins()
    numbers = {origin: index for index, origin in enumerate(origins, 1)}
    for view in description.views:
        lines.append("")
        if view.service:
            lines.append(f"Requests to {view.service}:")
        else:
            lines.append(f"Requests to its pods (service accounts {', '.join(workload.service_accounts)}):")
        lines += _findings(view.findings, numbers)
    lines += ["", "From:"]
    if origins:
        lines += _table([[f"[{numbers[o]}]", o.ref, o.file or f"namespace {o.namespace}"] for o in origins])
    lines.append(f"  {DEFAULTS_NOTE}")
    if live is not None:
        lines += [""] + _live_lines(live)
    return "\n".join(lines) + "\n"


def document(description: Description, live: Live | None) -> dict[str, Any]:
    workload = description.workload
    return {
        "target": workload.target,
        "namespace": workload.namespace,
        "services": list(workload.services),
        "serviceAccounts": list(workload.service_accounts),
        "instances": list(workload.instances),
        "policies": [{"service": view.service or None, "findings": [f.document() for f in view.findings]}
                     for view in description.views],  # fmt: skip
        "sources": [o.document() for o in description.origins()],
        "problems": list(description.problems),
        "live": None if live is None else live_document(live),
    }
