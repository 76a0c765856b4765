"""Supply-chain policy: which files of a project page an index shows, and why not the others.

An index's policy (issue 15), all of it off unless configured:
- `min_release_age`: a file uploaded (PEP 700 upload-time) less than this long ago is hidden;
  most malicious releases on the public index are found and removed within days. A file
  with no upload-time (an HTML-only upstream) passes or is hidden, as
  `files_without_upload_time` says.
- `deny` rules hide what they match; `allow` rules, when an index has any, hide what none
  of them matches. Deny wins over allow.
- An exemption (`bodega allow`, break-glass) shows a project, or one version of it, whatever
  the rules and the age say, until it expires or is revoked.

A hidden file is missing from pages, versions, the JSON API and search, and its URL answers
404 naming the rule. The hidden set changes with time (a release comes of age, an exemption
expires), so `filter_page` also says when the page will next change, which bounds how long
a client may cache it.
"""

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from fnmatch import fnmatchcase

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import NormalizedName
from packaging.version import InvalidVersion, Version

from bodega.core.filenames import ListedVersions, release_of
from bodega.core.indexes import compile_glob, glob_problem
from bodega.core.model import DistributionFile, ProjectPage
from bodega.core.names import normalize_project_name
from bodega.errors import InvalidName

# The rule names, as the X-Bodega-Policy header, metrics' `rule` label and audit lines say.
MIN_RELEASE_AGE = "min_release_age"
DENY = "deny"
ALLOW = "allow"
NO_UPLOAD_TIME = "files_without_upload_time"
SERVE_REMOVED = "serve_removed"

WITHOUT_UPLOAD_TIME = ("pass", "hide")

# A rule written as a string: a project-name glob, then optional version specifiers.
_RULE = re.compile(r"\s*([A-Za-z0-9._*?\[\]!-]+)\s*(.*?)\s*")
_RULE_KEYS = ("project", "versions", "files")


@dataclass(frozen=True, slots=True)
class Rule:
    """One allow or deny rule: project names (a glob), versions (specifiers), filenames (a
    glob); a part not given matches everything."""

    text: str  # as written in the config file: how the rule is named to people
    project: str = "*"
    versions: SpecifierSet | None = None
    files: str | None = None
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", compile_glob(self.project))

    def matches(self, project: str, version: Version | None, filename: str) -> bool:
        if not self._pattern.fullmatch(project):
            return False
        if self.files is not None and not fnmatchcase(filename, self.files):
            return False
        if self.versions is None:
            return True
        # A version that is no PEP 440 version cannot be said to be in a range.
        return version is not None and self.versions.contains(version, prereleases=True)


@dataclass(frozen=True, slots=True)
class IndexPolicy:
    """What one index hides; the default hides nothing."""

    min_release_age: float = 0.0  # seconds; 0: off
    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()
    files_without_upload_time: str = "pass"  # "pass" (counted) or "hide"
    serve_removed: bool = True  # a file removed upstream: its cached bytes still served

    @property
    def hides_anything(self) -> bool:
        return bool(self.min_release_age > 0 or self.allow or self.deny)


NO_POLICY = IndexPolicy()  # an index's policy when it has none (frozen: one for all)


@dataclass(frozen=True, slots=True)
class Exemption:
    """Break-glass: a project, or one version of it, shown whatever the policy says."""

    id: int
    index: str
    project: NormalizedName
    version: str | None  # None: every version
    reason: str
    created_by: str
    created_at: float  # epoch seconds
    until: float | None  # epoch seconds; None: until revoked
    revoked_at: float | None = None

    def is_active(self, now: float) -> bool:
        return self.revoked_at is None and (self.until is None or now < self.until)

    def covers(self, project: str, version: Version | None, now: float) -> bool:
        if not self.is_active(now) or project != self.project:
            return False
        if self.version is None:
            return True
        return version is not None and version == _version(self.version)

    @property
    def target(self) -> str:
        return self.project if self.version is None else f"{self.project}=={self.version}"


@dataclass(frozen=True, slots=True)
class Hidden:
    """Why a file is not shown: the rule (a fixed name) and, for people, the reason."""

    rule: str
    reason: str
    of_age_at: float | None = None  # min_release_age: when it comes of age


@dataclass(frozen=True, slots=True)
class Verdict:
    hidden: Hidden | None = None
    exempted_by: Exemption | None = None
    has_no_upload_time: bool = False  # passed although its age is unknown (counted)


@dataclass(frozen=True, slots=True)
class FilteredPage:
    """A page as an index shows it, the files it hides, and when that next changes."""

    page: ProjectPage
    hidden: tuple[tuple[DistributionFile, Hidden], ...]
    next_change: float | None  # epoch seconds; None: not with time alone
    without_upload_time: int  # files shown whose age is unknown


def parse_rule(raw: object) -> Rule:
    """A rule from the config file: `"urllib3<1.26.5"` (project glob and specifiers) or a
    table `{project = "...", versions = "...", files = "*.exe"}`; ValueError saying why not."""
    if isinstance(raw, str):
        found = _RULE.fullmatch(raw)
        if found is None or not raw.strip():
            raise ValueError(f"{raw!r} is no rule like 'urllib3<1.26.5' or 'evil-*'")
        project, versions = found.groups()
        return _rule(raw.strip(), project, versions or None, None)
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - set(_RULE_KEYS))
        if unknown or not raw:
            raise ValueError(f"{raw!r}: a rule's keys are {', '.join(_RULE_KEYS)}")
        if not all(isinstance(value, str) for value in raw.values()):
            raise ValueError(f"{raw!r}: every value of a rule is a string")
        text = " ".join(f"{key}={raw[key]}" for key in _RULE_KEYS if key in raw)
        return _rule(text, raw.get("project", "*"), raw.get("versions"), raw.get("files"))
    raise ValueError(f"{raw!r} is no rule (a string or a table)")


def _rule(text: str, project: str, versions: str | None, files: str | None) -> Rule:
    problem = glob_problem(project)
    if problem:
        raise ValueError(f"{text!r}: the project glob {project!r} {problem}")
    specifiers = None
    if versions is not None:
        try:
            specifiers = SpecifierSet(versions)
        except InvalidSpecifier:
            raise ValueError(f"{text!r}: {versions!r} are no version specifiers") from None
    if files is not None and (not files or "/" in files):
        raise ValueError(f"{text!r}: {files!r} is no filename glob")
    return Rule(text, project, specifiers, files)


def parse_target(text: str) -> tuple[NormalizedName, str | None]:
    """`PROJECT` or `PROJECT==VERSION`, as `bodega allow` takes it; ValueError if neither."""
    name, separator, version = text.partition("==")
    try:
        project = normalize_project_name(name.strip())
    except InvalidName:
        raise ValueError(f"{text!r} is no project name, or PROJECT==VERSION") from None
    if not separator:
        return project, None
    try:
        return project, str(Version(version.strip()))
    except InvalidVersion:
        raise ValueError(f"{version.strip()!r} is no version") from None


def upload_timestamp(file: DistributionFile) -> float | None:
    """The file's upload-time (PEP 700, ISO 8601) as epoch seconds; None when unknown."""
    if file.upload_time is None:
        return None
    try:
        moment = datetime.fromisoformat(file.upload_time)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # PEP 700 says UTC with a Z; a time without a zone is no known time
    return moment.timestamp()


def decide(
    policy: IndexPolicy,
    project: str,
    file: DistributionFile,
    exemptions: Sequence[Exemption],
    now: float,
    *,
    version: Version | None = None,
) -> Verdict:
    """Whether `file` of `project` (normalized) is shown: break-glass over deny over allow
    over the age. `version` is the file's (from its name when not given)."""
    if version is None:
        version = _file_version(file.filename, project)
    for exemption in exemptions:
        if exemption.covers(project, version, now):
            return Verdict(exempted_by=exemption)
    hidden = _by_rules(policy, project, version, file.filename)
    return Verdict(hidden) if hidden is not None else _by_age(policy, file, now)


def _by_rules(
    policy: IndexPolicy, project: str, version: Version | None, filename: str
) -> Hidden | None:
    for rule in policy.deny:
        if rule.matches(project, version, filename):
            return Hidden(DENY, f"denied by the rule {rule.text!r}")
    if policy.allow and not any(r.matches(project, version, filename) for r in policy.allow):
        return Hidden(ALLOW, "matched by no allow rule")
    return None


def _by_age(policy: IndexPolicy, file: DistributionFile, now: float) -> Verdict:
    if policy.min_release_age <= 0:
        return Verdict()
    uploaded = upload_timestamp(file)
    if uploaded is None:
        if policy.files_without_upload_time == "hide":
            return Verdict(Hidden(NO_UPLOAD_TIME, "upstream gives no upload time"))
        return Verdict(has_no_upload_time=True)
    of_age_at = uploaded + policy.min_release_age
    if now >= of_age_at:
        return Verdict()
    reason = (
        f"uploaded {_duration(now - uploaded)} ago; this index shows files"
        f" {_duration(policy.min_release_age)} after their upload"
    )
    return Verdict(Hidden(MIN_RELEASE_AGE, reason, of_age_at))


# One index's say over a file: its policy, and the exemptions made on it.
Governing = tuple[IndexPolicy, Sequence[Exemption]]


def filter_page(page: ProjectPage, chain: Sequence[Governing], now: float) -> FilteredPage:
    """The page with what any index of `chain` (the one asked, then the ones it serves
    from) hides taken out, with each version whose every file went with it, and when that
    will next change by time alone."""
    project = page.name
    chain = [(policy, [e for e in found if e.project == project]) for policy, found in chain]
    listed = ListedVersions(page.versions)
    shown: list[DistributionFile] = []
    hidden: list[tuple[DistributionFile, Hidden]] = []
    changes = [
        e.until for _, found in chain for e in found if e.until is not None and e.until > now
    ]
    without_upload_time = 0
    releases_shown: set[str] = set()
    releases_hidden: set[str] = set()
    versions_of: dict[str | None, Version | None] = {None: None}  # parsed once per release
    for file in page.files:
        release = release_of(file.filename, project, listed)
        if release not in versions_of:
            versions_of[release] = _version(release)
        verdict = judge(chain, project, file, now, version=versions_of[release])
        if verdict.hidden is None:
            shown.append(file)
            without_upload_time += verdict.has_no_upload_time
            if release is not None:
                releases_shown.add(release)
            continue
        hidden.append((file, verdict.hidden))
        if verdict.hidden.of_age_at is not None:
            changes.append(verdict.hidden.of_age_at)
        if release is not None:
            releases_hidden.add(release)
    if not hidden:
        return FilteredPage(page, (), min(changes, default=None), without_upload_time)
    gone = releases_hidden - releases_shown
    versions = tuple(v for v in page.versions if v not in gone)
    filtered = replace(page, files=tuple(shown), versions=versions)
    return FilteredPage(filtered, tuple(hidden), min(changes, default=None), without_upload_time)


def judge(
    chain: Sequence[Governing],
    project: str,
    file: DistributionFile,
    now: float,
    *,
    version: Version | None = None,
) -> Verdict:
    """The verdict of the first index of `chain` that hides the file, each with its own
    exemptions; else a shown file's. `version` is the file's (from its name when not given)."""
    if version is None:
        version = _file_version(file.filename, project)
    shown = Verdict()
    for policy, exemptions in chain:
        verdict = decide(policy, project, file, exemptions, now, version=version)
        if verdict.hidden is not None:
            return verdict
        if verdict.has_no_upload_time or verdict.exempted_by is not None:
            shown = verdict
    return shown


def seconds_until(moment: float | None, now: float) -> int | None:
    """Whole seconds from `now` to `moment` (at least 1), for max-age; None for no moment."""
    if moment is None:
        return None
    return max(1, math.ceil(moment - now))


def _file_version(filename: str, project: str) -> Version | None:
    spelled = release_of(filename, project, ListedVersions(()))
    return None if spelled is None else _version(spelled)


def _version(text: str | None) -> Version | None:
    if text is None:
        return None
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _duration(seconds: float) -> str:
    """`3d 4h`, `2h 5m`, `40s`: how long, as people say it."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0s"
