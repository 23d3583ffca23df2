"""Staff login and enrolment: password, then a passkey or a TOTP code; logout."""

from __future__ import annotations

import segno
from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.core.staff.errors import (
    EnrolmentExpired,
    SecondFactorRejected,
    StaffCredentialsRejected,
    StaffLoginRequired,
)
from idp.errors import PasswordRejected
from idp.web.activation import password_rules
from idp.web.security import check_csrf, client_ip
from idp.web.staff import bp, staff, staff_cookie, with_cookie


@bp.get("/connexion")
def login_page() -> ResponseReturnValue:
    """E-mail and password (the second factor comes next)."""
    return render_template("staff/login.html", errors=[], email="")


@bp.post("/connexion")
def login_submit() -> ResponseReturnValue:
    """Check the password (throttled); a half session then asks for the second factor."""
    check_csrf()
    email = request.form.get("email", "")[:254]
    try:
        cookie = staff().auth.login(email, request.form.get("mot_de_passe", ""), client_ip(), old=staff_cookie())
    except StaffCredentialsRejected as exc:
        return render_template("staff/login.html", errors=[exc.description], email=email), 401
    return with_cookie(redirect(url_for("staff.second_factor"), 303), cookie)


@bp.get("/second-facteur")
def second_factor() -> ResponseReturnValue:
    """Enrolment: register a passkey or a TOTP app. Login: prove one of them."""
    try:
        session, member = staff().auth.half_session(staff_cookie())
    except StaffLoginRequired:
        return redirect(url_for("staff.login_page"), 303)
    if session.second_factor_at is not None and member.has_second_factor:
        return redirect(url_for("staff.home"), 303)
    return _factor_page(enrolling=not member.has_second_factor, errors=[])


def _factor_page(*, enrolling: bool, errors: list[str], status: int = 200) -> ResponseReturnValue:
    factors = staff().factors
    cookie = staff_cookie()
    _, member = staff().auth.half_session(cookie)
    secret, uri = factors.totp_setup(cookie) if enrolling else ("", "")
    offered = staff().auth.rp.usable and (enrolling or member.passkeys > 0)
    options = factors.passkey_options(cookie, enrolling=enrolling) if offered else ""
    return render_template("staff/second_factor.html", enrolling=enrolling, member=member, secret=secret, uri=uri,
                           qr=qr_data_uri(uri) if enrolling else "", options=options, errors=errors), status


def qr_data_uri(text: str) -> str:
    """``text`` as a QR code in a PNG ``data:`` address, drawn here (segno, pure Python): the page needs no
    script, and the CSP's ``img-src data:`` (``idp.web.security``) already lets it show."""
    return segno.make(text, error="m", micro=False).png_data_uri(scale=5, border=4)


@bp.post("/second-facteur/code")
def totp_submit() -> ResponseReturnValue:
    """A TOTP code: confirms the app at enrolment, proves it at login; the cookie is rotated."""
    check_csrf()
    auth, factors = staff().auth, staff().factors
    try:
        _, member = auth.half_session(staff_cookie())
        enrolling = not member.has_second_factor
        code = request.form.get("code", "")[:20]
        cookie = factors.totp_confirm(staff_cookie(), code, client_ip()) if enrolling else \
            factors.totp_login(staff_cookie(), code, client_ip())
    except StaffLoginRequired:
        return redirect(url_for("staff.login_page"), 303)
    except SecondFactorRejected as exc:
        try:
            return _factor_page(enrolling=enrolling, errors=[exc.description], status=400)
        except StaffLoginRequired:  # too many failures ended the half session
            return redirect(url_for("staff.login_page"), 303)
    return with_cookie(redirect(url_for("staff.home"), 303), cookie)


@bp.post("/second-facteur/cle")
def passkey_submit() -> ResponseReturnValue:
    """The browser's WebAuthn answer (JSON in a form field): registration at enrolment, assertion at login."""
    check_csrf()
    auth, factors = staff().auth, staff().factors
    credential = request.form.get("credential", "")
    try:
        _, member = auth.half_session(staff_cookie())
        enrolling = not member.has_second_factor
        cookie = factors.passkey_register(staff_cookie(), credential, client_ip()) if enrolling else \
            factors.passkey_login(staff_cookie(), credential, client_ip())
    except StaffLoginRequired:
        return redirect(url_for("staff.login_page"), 303)
    except SecondFactorRejected as exc:
        try:
            return _factor_page(enrolling=enrolling, errors=[exc.description], status=400)
        except StaffLoginRequired:
            return redirect(url_for("staff.login_page"), 303)
    return with_cookie(redirect(url_for("staff.home"), 303), cookie)


@bp.get("/inscription/<token>")
def enrol_page(token: str) -> ResponseReturnValue:
    """The link of the enrolment mail: choose a password."""
    try:
        member = staff().auth.enrolment(token[:64])
    except EnrolmentExpired as exc:
        return render_template("staff/message.html", title=exc.title, message=exc.description), 400
    return render_template("staff/enrol.html", member=member, token=token[:64], rules=password_rules(), errors=[])


@bp.post("/inscription/<token>")
def enrol_submit(token: str) -> ResponseReturnValue:
    """Set the password (the link is burnt), then the second factor."""
    check_csrf()
    auth = staff().auth
    try:
        cookie = auth.set_password(token[:64], request.form.get("mot_de_passe", "")[:1024],
                                   request.form.get("confirmation", "")[:1024], client_ip())
    except EnrolmentExpired as exc:
        return render_template("staff/message.html", title=exc.title, message=exc.description), 400
    except PasswordRejected as exc:
        member = auth.enrolment(token[:64])
        return render_template("staff/enrol.html", member=member, token=token[:64], rules=password_rules(),
                               errors=exc.reasons), 400
    return with_cookie(redirect(url_for("staff.second_factor"), 303), cookie)


@bp.post("/deconnexion")
def logout() -> ResponseReturnValue:
    """End the staff session."""
    check_csrf()
    staff().auth.logout(staff_cookie(), client_ip())
    return with_cookie(redirect(url_for("staff.login_page"), 303), None)
