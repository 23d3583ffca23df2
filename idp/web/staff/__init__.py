"""The school staff console at ``/etablissement``: staff login (password + passkey or TOTP), families, inbox,
funnel, campaigns; and the families' request-for-help form at ``/aide/demande``.

Every console view goes through ``console_view``: a live staff session WITH its second factor, or a redirect
to the login (or to the second factor); the core then filters every record through the member's scope, so a
record of another school is a 404 whatever the route.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from idp.core.staff.errors import SecondFactorRequired, StaffLoginRequired
from idp.core.staff.model import StaffContext
from idp.settings import Settings
from idp.staff_wiring import StaffServices
from idp.web.activation import install_flow_headers
from idp.web.i18n import french_language_name

bp = Blueprint("staff", __name__, url_prefix="/etablissement")
help_bp = Blueprint("help", __name__)
install_flow_headers(bp)
install_flow_headers(help_bp)


def staff() -> StaffServices:
    """The console's services."""
    return current_app.extensions["idp"].extras["staff"]  # type: ignore[no-any-return]


def cookie_name(settings: Settings) -> str:
    """``__Host-staff`` over https, ``idp_staff`` in development: apart from the families' SSO cookie."""
    return "__Host-staff" if settings.https else "idp_staff"


def staff_cookie() -> str | None:
    """This request's staff session cookie."""
    return request.cookies.get(cookie_name(current_app.extensions["idp"].settings))


def with_cookie(response: Response, value: str | None) -> Response:
    """Set (or, with None, delete) the staff cookie: session-only, HttpOnly, SameSite=Strict."""
    settings = current_app.extensions["idp"].settings
    if value is None:
        response.delete_cookie(cookie_name(settings), path="/", secure=settings.https, httponly=True,
                               samesite="Strict")
    else:
        response.set_cookie(cookie_name(settings), value, secure=settings.https, httponly=True, samesite="Strict",
                            path="/")
    return response


def console_view(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Load the caller (``ctx``) before the view; logged out or without the second factor: to the login."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        try:
            ctx: StaffContext = staff().auth.context(staff_cookie())
        except SecondFactorRequired:
            return redirect(url_for("staff.second_factor"), 303)
        except StaffLoginRequired:
            return redirect(url_for("staff.login_page"), 303)
        return view(ctx, *args, **kwargs)

    return wrapper


def register_staff(app: Flask) -> None:
    """Plug the console and the request-for-help form into the application."""
    from idp.web.staff import auth_views, desk_views, family_views, help_views  # noqa: F401 - routes

    app.register_blueprint(bp)
    app.register_blueprint(help_bp)
    app.jinja_env.filters["langue_famille"] = french_language_name
