"""Accounts and tokens for tests, made as an operator makes them: through the composition
root's `open_accounts` (in-process servers) or the `bodega` CLI (server processes)."""

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from bodega.config import Settings
from bodega.core.access import ANYONE, Action
from bodega.services import open_accounts


async def make_token(
    settings: Settings,
    user: str,
    *,
    indexes: Sequence[str] = (ANYONE,),
    scope: Action = Action.UPLOAD,
    is_admin: bool = False,
    password: str | None = None,
    projects: Sequence[str] = (),
) -> str:
    """A token of `user` (made, with `password`, if there is no such account yet), before
    or beside a server over `settings`' data dir."""
    async with open_accounts(settings) as accounts:
        if user not in {found.name for found in await accounts.users()}:
            await accounts.add_user(user, password, is_admin=is_admin)
        return await accounts.create_token(user, indexes, scope, expires_in=3600, projects=projects)


def make_token_with_cli(
    data_dir: Path,
    user: str,
    *,
    config: Path | None = None,
    indexes: Sequence[str] = (ANYONE,),
    scope: Action = Action.UPLOAD,
    is_admin: bool = False,
) -> str:
    """As make_token, through `bodega user add` and `bodega token create`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BODEGA_")}
    environ["BODEGA_DATA_DIR"] = str(data_dir)
    if config is not None:
        environ["BODEGA_CONFIG"] = str(config)
    bodega = [sys.executable, "-m", "bodega"]
    add = [*bodega, "user", "add", user, "--no-password", *(["--admin"] if is_admin else [])]
    subprocess.run(add, env=environ, check=False, capture_output=True, timeout=60)
    create = [*bodega, "token", "create", "--user", user, "--scope", scope.label]
    for index in indexes:
        create += ["--index", index]
    made = subprocess.run(
        [*create, "--expires", "1d"], env=environ, check=True, capture_output=True, text=True
    )
    return made.stdout.strip()
