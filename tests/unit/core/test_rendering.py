import json

from packaging.utils import NormalizedName

from bodega.core.model import DistributionFile, ProjectPage, ProjectStatus
from bodega.core.parsing import HTML, JSON_V1, parse_project_page
from bodega.core.rendering import render_project_html, render_project_json

SHA = "a" * 64
FILE = DistributionFile(
    filename="demo-1.0+local-py3-none-any.whl",
    url="https://files.test/p/demo-1.0+local-py3-none-any.whl",
    hashes={"sha256": SHA},
    requires_python='>=3.8,<4"><script>',
    yanked='"><img onerror=x>',
    core_metadata={"sha256": "b" * 64},
    size=123,
    upload_time="2026-01-02T03:04:05.000000Z",
)
PAGE = ProjectPage(NormalizedName("demo"), (FILE,), versions=("1.0+local",))
BASE = "http://bodega.test/simple/demo/"


def test_html_round_trips_through_the_parser_with_bodega_links() -> None:
    body = render_project_html(PAGE)
    (file,) = parse_project_page(body, HTML, BASE, PAGE.name).files
    assert file.url == "http://bodega.test/files/demo/demo-1.0%2Blocal-py3-none-any.whl"
    assert file.filename == FILE.filename
    assert (file.sha256, file.requires_python, file.yanked) == (
        SHA,
        FILE.requires_python,
        FILE.yanked,
    )
    assert file.metadata_sha256 == "b" * 64


def test_html_escapes_upstream_strings() -> None:
    """Threat 9, conformance 13."""
    body = render_project_html(PAGE).decode()
    assert "<script>" not in body
    assert "<img" not in body
    assert 'data-requires-python="&gt;=3.8,&lt;4&quot;&gt;&lt;script&gt;"' in body
    assert 'content="1.0"' in body


def test_json_has_pep_700_fields_and_never_dist_info_metadata() -> None:
    """Conformance 20, 21 (PEP 714: no dist-info-metadata key in JSON)."""
    document = json.loads(render_project_json(PAGE))
    assert document["meta"]["api-version"] == "1.1"
    assert document["versions"] == ["1.0+local"]
    (entry,) = document["files"]
    assert "dist-info-metadata" not in entry
    assert entry["core-metadata"] == {"sha256": "b" * 64}
    assert entry["size"] == 123
    assert entry["upload-time"] == FILE.upload_time
    assert entry["url"] == "../../files/demo/demo-1.0%2Blocal-py3-none-any.whl"
    assert entry["requires-python"] == FILE.requires_python  # JSON is not HTML-escaped
    reparsed = parse_project_page(render_project_json(PAGE), JSON_V1, BASE, PAGE.name)
    assert reparsed.files[0].yanked == FILE.yanked


def test_json_claims_1_0_when_a_size_is_unknown() -> None:
    page = ProjectPage(
        NormalizedName("demo"), (DistributionFile("demo-1.0.tar.gz", "https://x/demo-1.0.tar.gz"),)
    )
    document = json.loads(render_project_json(page))
    assert document["meta"]["api-version"] == "1.0"
    assert document["versions"] == ["1.0"]


def test_a_quarantined_project_lists_no_files() -> None:
    """PEP 792."""
    page = ProjectPage(NormalizedName("demo"), (FILE,), status=ProjectStatus("quarantined"))
    assert json.loads(render_project_json(page))["files"] == []
    assert b"<a " not in render_project_html(page)


def test_gpg_signatures_are_never_claimed_since_bodega_serves_no_asc_files() -> None:
    signed = ProjectPage(PAGE.name, (DistributionFile("demo-1.0.tar.gz", BASE, gpg_sig=True),))
    assert "gpg-sig" not in json.loads(render_project_json(signed))["files"][0]
    assert b"data-gpg-sig" not in render_project_html(signed)
