"""Projects whose upstream strings try to become markup, for the UI and search tests."""

from tests.support.distributions import BuiltFile, build_wheel
from tests.support.fake_index import FakeIndex

SUMMARY = '<script>alert("summary")</script> & "quotes"'
DESCRIPTION = '</pre><script>alert("description")</script><img src=x onerror=alert(1)>'
YANKED = '<img src=x onerror=alert("yanked")>'
MARKUP = ("<script", "<img", "</pre><")  # none of these may reach a page unescaped


def hostile_wheel(name: str, version: str) -> BuiltFile:
    """A wheel whose core metadata has a scripting summary and description."""
    wheel = build_wheel(name, version)
    metadata = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {SUMMARY}\n"
        f"Description-Content-Type: text/markdown\n\n{DESCRIPTION}\n"
    ).encode()
    return BuiltFile(wheel.filename, wheel.data, metadata)


def publish_hostile(index: FakeIndex, name: str = "evil") -> BuiltFile:
    """Two releases: 1.0 yanked with a scripting reason, 2.0 with scripting metadata."""
    index.add(name, build_wheel(name, "1.0"), yanked=YANKED)
    newest = hostile_wheel(name, "2.0")
    index.add(name, newest)
    return newest
