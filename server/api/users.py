"""``/api/users``: user accounts, for administrators."""

from __future__ import annotations

from apiflask import APIBlueprint, abort
from sqlalchemy import select

from server.auth.accounts import AccountError, create_user, set_password, update_flags
from server.auth.identity import SIGNED_IN, require_admin
from server.extensions import db
from server.models import User
from server.schemas.users import UserCreateIn, UserOut, UserUpdateIn

bp = APIBlueprint("users", __name__, url_prefix="/api/users", tag="Users")


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404, f"there is no user {user_id}")
    return user


@bp.get("")
@bp.output(UserOut(many=True))
@bp.doc(security=SIGNED_IN, responses=[403])
def list_users() -> list[User]:
    """All users (administrators)"""
    require_admin()
    return list(db.session.scalars(select(User).order_by(User.username)))


@bp.post("")
@bp.input(UserCreateIn, arg_name="body")
@bp.output(UserOut, status_code=201)
@bp.doc(security=SIGNED_IN, responses=[403, 409])
def create(body: dict) -> User:
    """Create a user (administrators)"""
    require_admin()
    try:
        user = create_user(body["username"], body["password"], body["is_admin"])
    except AccountError as error:
        abort(error.status, str(error))
    db.session.commit()
    return user


@bp.get("/<int:user_id>")
@bp.output(UserOut)
@bp.doc(security=SIGNED_IN, responses=[403])
def get(user_id: int) -> User:
    """One user (administrators)"""
    require_admin()
    return _user_or_404(user_id)


@bp.patch("/<int:user_id>")
@bp.input(UserUpdateIn, arg_name="body")
@bp.output(UserOut)
@bp.doc(security=SIGNED_IN, responses=[403, 409])
def update(user_id: int, body: dict) -> User:
    """Change a user (administrators)

    Deactivate or reactivate (`is_active`), grant or withdraw administration (`is_admin`), or
    reset the password (`password`). Deactivating or resetting ends the user's sessions;
    deactivated users' API tokens stop working. The last active administrator cannot be
    deactivated or demoted.
    """
    require_admin()
    user = _user_or_404(user_id)
    try:
        update_flags(user, is_admin=body.get("is_admin"), is_active=body.get("is_active"))
        if "password" in body:
            set_password(user, body["password"])
    except AccountError as error:
        abort(error.status, str(error))
    db.session.commit()
    return user
