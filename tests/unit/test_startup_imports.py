"""`bodega serve` starts in about half a second (issue 6): what only some requests or other
commands need is imported on first use, never by the serving process at start."""

import subprocess
import sys

# The web UI's templates, the XML-RPC parsers, the lock-file parsers (and their packaging
# requirement grammar), the JSON API's metadata shaping and sdist reading.
LOADED_ON_FIRST_USE = (
    "jinja2",
    "xmlrpc.client",
    "defusedxml",
    "bodega.core.lockfiles",
    "bodega.prefetch",
    "packaging.requirements",
    "bodega.core.json_api",
    "trove_classifiers",
    "tarfile",
    # The S3 client, for --blob-store s3:// only.
    "botocore",
    "aiobotocore",
    "bodega.storage.s3blobs",
)


def test_serving_imports_nothing_that_only_some_requests_need() -> None:
    probe = (
        "import sys\n"
        "import bodega.cli, bodega.web.server\n"
        f"print(','.join(m for m in {LOADED_ON_FIRST_USE!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == ""
