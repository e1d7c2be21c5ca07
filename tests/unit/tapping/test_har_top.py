"""HAR 1.2 export checked against the spec's structure, and the `top` aggregation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from meshctl.tapping.har import write_har
from meshctl.tapping.store import TapStore
from meshctl.tapping.top import TopTable, table_lines
from tests.unit.tapping.scenario import scenario

# Required fields and their types, from the HAR 1.2 spec (softwareishard.com/blog/har-12-spec).
NAME_VALUE = {"name": str, "value": str}
SPEC: dict[str, dict[str, Any]] = {
    "log": {"version": str, "creator": {"name": str, "version": str}, "entries": list},
    "entry": {"startedDateTime": str, "time": (int, float), "request": dict, "response": dict, "cache": dict,
              "timings": dict},
    "request": {"method": str, "url": str, "httpVersion": str, "cookies": list, "headers": list,
                "queryString": list, "headersSize": int, "bodySize": int},
    "response": {"status": int, "statusText": str, "httpVersion": str, "cookies": list, "headers": list,
                 "content": dict, "redirectURL": str, "headersSize": int, "bodySize": int},
    "content": {"size": int, "mimeType": str},
    "timings": {"send": (int, float), "wait": (int, float), "receive": (int, float)},
    "postData": {"mimeType": str},
}  # fmt: skip
ISO_8601 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def conforms(value: dict[str, Any], spec: dict[str, Any], where: str) -> list[str]:
    problems = []
    for key, kind in spec.items():
        if key not in value:
            problems.append(f"{where}.{key} missing")
        elif isinstance(kind, dict):
            problems += conforms(value[key], kind, f"{where}.{key}")
        elif not isinstance(value[key], kind) or isinstance(value[key], bool):
            problems.append(f"{where}.{key} is {type(value[key]).__name__}")
    for key in value:
        if key not in spec and not key.startswith("_") and where.count(".") == 0 and where != "log":
            pass
    return problems


def validate_har(document: dict[str, Any]) -> list[str]:
    problems = conforms(document["log"], SPEC["log"], "log")
    if document["log"]["version"] != "1.2":
        problems.append("log.version is not 1.2")
    for n, entry in enumerate(document["log"]["entries"]):
        where = f"entries[{n}]"
        problems += conforms(entry, SPEC["entry"], where)
        problems += conforms(entry["request"], SPEC["request"], f"{where}.request")
        problems += conforms(entry["response"], SPEC["response"], f"{where}.response")
        problems += conforms(entry["response"]["content"], SPEC["content"], f"{where}.response.content")
        problems += conforms(entry["timings"], SPEC["timings"], f"{where}.timings")
        if "postData" in entry["request"]:
            post = entry["request"]["postData"]
            problems += conforms(post, SPEC["postData"], f"{where}.request.postData")
            if "text" not in post and "params" not in post:
                problems.append(f"{where}.request.postData has neither text nor params")
        for part in ("request", "response"):
            for header in entry[part]["headers"]:
                problems += conforms(header, NAME_VALUE, f"{where}.{part}.headers[]")
        for item in entry["request"]["queryString"]:
            problems += conforms(item, NAME_VALUE, f"{where}.request.queryString[]")
        if not ISO_8601.match(entry["startedDateTime"]):
            problems.append(f"{where}.startedDateTime is not ISO 8601")
        timings = entry["timings"]
        if min(timings["send"], timings["wait"], timings["receive"]) < 0:
            problems.append(f"{where}.timings has a negative required phase")
        if any(not k.startswith("_") for k in entry if k not in (*SPEC["entry"], "serverIPAddress", "connection",
                                                                   "pageref", "comment")):  # fmt: skip
            problems.append(f"{where} has a custom field without '_'")
    return problems


def store() -> TapStore:
    s = TapStore()
    for event in scenario():
        s.add(event)
    return s


def test_har_export_follows_the_har_1_2_structure(tmp_path: Path) -> None:
    path = tmp_path / "tap.har"
    assert write_har(path, store().exchanges()) == 4
    document = json.loads(path.read_text())
    assert validate_har(document) == []
    entries = {e["_meshctl"]["instance"] + ":" + str(e["_meshctl"]["id"]): e for e in document["log"]["entries"]}
    books = entries["webapp-0:2"]
    assert books["request"]["url"] == "http://books.booksapp.svc.cluster.local:7002/books?author=3&q=a b"
    assert books["request"]["queryString"] == [{"name": "author", "value": "3"}, {"name": "q", "value": "a b"}]
    assert books["request"]["postData"] == {"mimeType": "application/json", "text": '{"title": "Dune"}'}
    assert books["response"]["content"]["encoding"] == "base64"
    assert books["response"]["status"] == 500 and books["time"] == 3.8
    assert entries["webapp-0:3"]["_meshctl"]["grpc_status"] == "Unavailable"
    assert entries["webapp-0:3"]["request"]["httpVersion"] == "HTTP/2"
    failed = entries["webapp-1:1"]
    assert failed["response"]["status"] == 0 and failed["_meshctl"]["failure"].startswith("connect to")
    redacted = {h["name"]: h["value"] for h in entries["webapp-0:1"]["request"]["headers"]}
    assert redacted["authorization"] == "[redacted]"


def test_the_validator_catches_a_broken_document() -> None:
    bad = {"log": {"version": "1.1", "creator": {"name": "x"}, "entries": [{"time": "slow"}]}}
    problems = validate_har(_fill(bad))
    assert "log.version is not 1.2" in problems and "log.creator.version missing" in problems


def _fill(document: dict[str, Any]) -> dict[str, Any]:
    entry = document["log"]["entries"][0]
    entry.update(startedDateTime="yesterday", cache={}, timings={"send": 0, "wait": -1, "receive": 0})
    entry["request"] = {"headers": [], "queryString": []}
    entry["response"] = {"headers": [], "content": {}}
    return document


def test_top_counts_the_busiest_paths() -> None:
    table = TopTable()
    s = store()
    for exchange in s.exchanges():
        table.add(exchange)
        table.add(exchange)  # twice: counts and latencies accumulate
    rows = table.rows()
    assert [(r.source, r.destination, r.method, r.path, r.count) for r in rows] == [
        ("ingress", "webapp-0", "GET", "/books", 2),
        ("webapp-0", "books", "POST", "/books", 2),
        ("webapp-0", "ratings", "POST", "/ratings.Ratings/Get", 2),
        ("webapp-1", "authors", "GET", "/authors/1", 2),
    ]
    assert rows[0].success_rate == 1.0 and rows[1].success_rate == 0.0
    lines = table_lines(rows)
    assert lines[0].split() == ["Source", "Destination", "Method", "Path", "Count", "Best", "Worst", "Last",
                                "Success", "Rate"]  # fmt: skip
    assert lines[1].split()[-4:] == ["9.1ms", "9.1ms", "9.1ms", "100.00%"]
    narrow = table_lines(rows, width=80)
    assert all(len(line) <= 80 for line in narrow) and "/ratin…" in narrow[3]
    assert table_lines(TopTable(hide_sources=True).rows(), hide_sources=True)[0].startswith("Destination")
