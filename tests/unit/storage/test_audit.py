"""storage.audit: JSON lines appended off the event loop, rotated by size."""

import json
from pathlib import Path

from bodega.storage.audit import JsonLinesAudit


def test_events_are_json_lines_rotated_by_size(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "policy-audit.jsonl"
    audit = JsonLinesAudit(path, max_bytes=200, backups=2)
    for number in range(20):
        audit.record({"event": "blocked", "n": number, "reason": "a \n newline stays one line"})
    audit.close()
    files = sorted(tmp_path.joinpath("audit").iterdir())
    assert [f.name for f in files] == [
        "policy-audit.jsonl",
        "policy-audit.jsonl.1",
        "policy-audit.jsonl.2",
    ]
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[-1]["n"] == 19
    assert all(line["event"] == "blocked" for line in lines)
