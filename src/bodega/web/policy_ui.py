"""`/<user>/<index>/+policy`: what an index hides and why, its break-glass exemptions, and
the last files it hid (issue 15). Bound to the one service it reads, Policies."""

import time

from aiohttp import web

from bodega.core.policy import Exemption, IndexPolicy
from bodega.proxy.indexes import Indexes
from bodega.proxy.policy import Policies
from bodega.web import ui
from bodega.web.routing import Match


class PolicyPage:
    def __init__(self, policies: Policies, indexes: Indexes) -> None:
        self._policies = policies
        self._indexes = indexes

    async def page(self, request: web.Request, match: Match) -> web.Response:
        name = self._indexes.spec(match.index).name  # NotFound for no such index
        mirrors = [mirror.name for mirror in self._indexes.mirrors_of(name)]
        governing = list(dict.fromkeys((name, *mirrors)))
        policies = [(index, self._policies.of(index)) for index in governing]
        exemptions = [e for e in await self._policies.exemptions() if e.index in governing]
        now = time.time()
        return await ui.render_page(
            request,
            "policy.html",
            index=name,
            policies=[(index, _rules(policy)) for index, policy in policies],
            active=[e for e in reversed(exemptions) if e.is_active(now)],
            past=[e for e in reversed(exemptions) if not e.is_active(now)],
            blocks=[block for block in self._policies.recent if block.index in governing],
            state=_state,
        )


def _rules(policy: IndexPolicy) -> list[tuple[str, str]]:
    """The policy as (key, value) lines, as the config file writes them."""
    if not policy.hides_anything and policy.serve_removed:
        return []
    rules = []
    if policy.min_release_age > 0:
        rules.append(("min_release_age", _duration(policy.min_release_age)))
        rules.append(("files_without_upload_time", policy.files_without_upload_time))
    rules.extend(("deny", rule.text) for rule in policy.deny)
    rules.extend(("allow", rule.text) for rule in policy.allow)
    rules.append(("serve_removed", "true" if policy.serve_removed else "false"))
    return rules


def _state(exemption: Exemption) -> str:
    if exemption.revoked_at is not None:
        return "revoked"
    return "expired" if exemption.until is not None and exemption.until <= time.time() else ""


def _duration(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
