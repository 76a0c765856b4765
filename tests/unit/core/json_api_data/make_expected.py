"""Writes `<file>.expected.json`: the JSON API `info` the public index renders for a release
uploaded with this METADATA / PKG-INFO. Run once by hand, outside the test suite:

    python make_expected.py DIST...   (in a venv with packaging, trove-classifiers, twine)

with the distribution files themselves (`pip download --no-deps`). Nothing of bodega is
imported: the steps follow warehouse's code (pypi/warehouse at 6b62157):
1. the form twine uploads: `twine.package.PackageFile.metadata_dictionary()`;
2. forklift/metadata.py `parse_form_metadata` (-> packaging `Metadata`) and the Release
   columns forklift/legacy.py fills from it (keywords, platform, dynamic, requires_dist,
   classifiers in trove-classifiers' order);
3. legacy/api/json.py's `info` and packaging/models.py `Release.urls` (project_urls).
A header `Description` (metadata 1.x) is dedented as pkginfo did for the tools that uploaded
such releases (setup.py upload, twine before 4); today's twine would send it indented.
`name` is the file's own Name (the issue's choice; see _own_name). The bodega-side URL
fields (package_url, project_url, release_url) are left out: they point to bodega.
After a run, the registry's host names in the stored files (inputs and outputs alike) are
replaced by `index.example` / `files.example`: the project names no registry host, and the
parsing under test does not depend on them.
"""

import json
import string
import sys
from pathlib import Path

from packaging.metadata import Metadata, RawMetadata
from trove_classifiers import sorted_classifiers
from twine.package import PackageFile  # type: ignore[import-not-found]

_SKIP = {"pyversion", "filetype", "sha256_digest", "blake2_256_digest", "md5_digest", "comment"}
_RENAME = {"platform": "platforms", "license_file": "license_files"}


def info(distribution: Path) -> dict[str, object]:
    form = PackageFile.from_filename(str(distribution), None).metadata_dictionary()
    raw: dict[str, object] = {}
    for key, sent in form.items():
        if key in _SKIP or sent in (None, "", [], {}):
            continue
        value = sent
        if key == "keywords" and isinstance(value, list):
            value = [k.strip() for k in ", ".join(value).split(",")]  # packaging's split
        if key == "description" and form.get("metadata_version", "2.1") < "2.1":
            value = "\n".join(
                x[8:] if x.startswith(" " * 8) else x for x in value.strip().splitlines()
            )
        raw[_RENAME.get(key, key)] = value
    meta = Metadata.from_raw(RawMetadata(**raw), validate=False)  # type: ignore[typeddict-item]
    urls: dict[str, str] = {}
    if meta.home_page:
        urls["Homepage"] = meta.home_page
    if meta.download_url:
        urls["Download"] = meta.download_url
    for name, url in (meta.project_urls or {}).items():
        label = name.translate(
            str.maketrans("", "", string.punctuation + string.whitespace)
        ).lower()
        if label == "homepage" and url == urls.get("Homepage"):
            continue
        if label == "downloadurl" and url == urls.get("Download"):
            continue
        urls[name] = url
    order = {c: i for i, c in enumerate(sorted_classifiers)}
    return {
        # project.name: the name the project was registered with, which twine's form no
        # longer carries (it sends a "safe" name); the METADATA's own Name stands for it.
        "name": _own_name(distribution),
        "version": str(meta.version),
        "summary": meta.summary,
        "description_content_type": meta.description_content_type,
        "description": meta.description or "",
        "keywords": ", ".join(meta.keywords) if meta.keywords else None,
        "license": meta.license,
        "license_expression": meta.license_expression,
        "license_files": meta.license_files,
        "classifiers": sorted(set(meta.classifiers or []), key=lambda c: order.get(c, len(order))),
        "author": meta.author,
        "author_email": meta.author_email,
        "maintainer": meta.maintainer,
        "maintainer_email": meta.maintainer_email,
        "requires_python": str(meta.requires_python) if meta.requires_python else None,
        "platform": meta.platforms[0] if meta.platforms else None,
        "downloads": {"last_day": -1, "last_week": -1, "last_month": -1},
        "project_urls": dict(sorted(urls.items())) or None,
        "requires_dist": [str(r) for r in meta.requires_dist] if meta.requires_dist else None,
        "provides_extra": list(meta.provides_extra) if meta.provides_extra else None,
        "docs_url": None,
        "bugtrack_url": None,
        "home_page": meta.home_page,
        "download_url": meta.download_url,
        "yanked": False,
        "yanked_reason": None,
        "dynamic": [x.title() for x in meta.dynamic] if meta.dynamic else None,
    }


def _own_name(distribution: Path) -> str:
    source = distribution.name.split("-")[0] + "-" + distribution.name.split("-")[1]
    suffix = "PKG-INFO" if distribution.name.endswith((".tar.gz", ".zip")) else "METADATA"
    text = (Path(__file__).parent / f"{source.removesuffix('.tar.gz')}.{suffix}").read_text()
    return next(line[6:] for line in text.splitlines() if line.startswith("Name: "))


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        distribution = Path(argument)
        name, version = distribution.name.split("-")[:2]
        suffix = "PKG-INFO" if distribution.name.endswith((".tar.gz", ".zip")) else "METADATA"
        target = Path(__file__).parent / f"{name}-{version.removesuffix('.tar.gz')}.{suffix}"
        text = json.dumps(info(distribution), indent=1, sort_keys=True, ensure_ascii=False)
        target.with_name(target.name + ".expected.json").write_text(text + "\n", "utf-8")
