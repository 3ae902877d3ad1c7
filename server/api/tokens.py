"""``/api/tokens``: your API tokens for scripts and notebooks."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from sqlalchemy import select

from server.auth.identity import SIGNED_IN, current_user
from server.auth.tokens import create_token
from server.database import utcnow
from server.extensions import db
from server.models import ApiToken
from server.schemas.users import TokenCreatedOut, TokenIn, TokenOut

bp = APIBlueprint("tokens", __name__, url_prefix="/api/tokens", tag="Tokens")


@bp.get("")
@bp.output(TokenOut(many=True))
@bp.doc(security=SIGNED_IN)
def list_tokens() -> list[ApiToken]:
    """Your API tokens

    Revoked tokens are listed too, with their revocation time. Secrets are never shown again.
    """
    user = current_user()
    tokens = db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id))
    return list(tokens)


@bp.post("")
@bp.input(TokenIn, arg_name="body")
@bp.output(TokenCreatedOut, status_code=201)
@bp.doc(security=SIGNED_IN)
def create(body: dict) -> dict:
    """Create an API token

    The response holds the secret, once. Send it as `Authorization: Bearer <token>`.
    """
    token, secret = create_token(current_user(), body["name"])
    db.session.commit()
    return {"id": token.id, "name": token.name, "prefix": token.prefix,
            "created_at": token.created_at, "last_used_at": None, "revoked_at": None,
            "token": secret}


@bp.delete("/<int:token_id>")
@bp.output({}, status_code=204)
@bp.doc(security=SIGNED_IN)
def revoke(token_id: int) -> tuple[str, int]:
    """Revoke one of your API tokens

    Revoking an already revoked token is not an error.
    """
    user = current_user()
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        abort(404, f"you have no API token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return "", 204
