"""``postsales hash-token``: make API tokens and the hashes ``POSTSALES_API_KEYS`` holds."""

from __future__ import annotations

import json
import secrets
import sys
from typing import Annotated

import typer

from deploy.cli.common import fail
from shared.settings import SCOPES, hash_token

READ_STDIN = "-"


def hash_token_cmd(
    token: Annotated[str | None, typer.Argument(
        help="The token to hash ('-' reads it from stdin); a strong one is generated when omitted.")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="Print a POSTSALES_API_KEYS entry with these scopes.")]
    = None,
) -> None:
    """Print sha256:<hex> of a token, the form to put in POSTSALES_API_KEYS (the token itself stays secret)."""
    unknown = set(scope or []) - SCOPES
    if unknown:
        raise fail(f"unknown scope(s) {sorted(unknown)}; one of: {', '.join(sorted(SCOPES))}", code=2)
    if token == READ_STDIN:
        token = sys.stdin.readline().strip()
    generated = token is None
    if token is None:
        token = "ps_" + secrets.token_urlsafe(32)
    elif len(token) < 16:
        raise fail("tokens must have at least 16 characters (the services refuse shorter ones)", code=2)
    digest = hash_token(token)
    if generated:
        typer.echo(f"token: {token}")
        typer.echo(f"hash:  {digest}")
    else:
        typer.echo(digest)
    if scope:
        typer.echo(f"POSTSALES_API_KEYS entry: {json.dumps({digest: scope})}")
