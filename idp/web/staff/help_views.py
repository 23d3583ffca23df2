"""The families' request for help (``/aide/demande``): no login, CSRF, throttled, a reference shown.

A families' page (``templates/help_request.html``, six languages, each field with its own error); the request
lands in the school's French inbox."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from idp.core.activation.errors import FormProblem, SendLimited
from idp.web.activation import limited
from idp.web.security import check_csrf, client_ip
from idp.web.staff import help_bp, staff

FIELDS = ("nom", "prenom", "enfants", "contact", "message", "uai")


def _context() -> str:
    value = request.values.get("contexte", "")[:40]
    return value if all(c.isalnum() or c in "-_." for c in value) else ""


@help_bp.get("/aide/demande")
def help_form() -> ResponseReturnValue:
    """The form: names, children as typed, the school among the register's, a contact."""
    return render_template("help_request.html", schools=staff().desk.schools(), form={}, errors=[],
                           contexte=_context())


@help_bp.post("/aide/demande")
def help_submit() -> ResponseReturnValue:
    """Store it in the school's inbox and show the reference."""
    check_csrf()
    form = {k: request.form.get(k, "")[:2000] for k in FIELDS}
    desk = staff().desk
    try:
        reference = desk.request_help(form["uai"][:8], form["nom"][:100], form["prenom"][:200], form["enfants"],
                                      form["contact"], form["message"], _context(), client_ip())
    except FormProblem as exc:
        return render_template("help_request.html", schools=desk.schools(), form=form, field_errors=exc.fields,
                               errors=[r for r in exc.reasons if r not in exc.fields.values()],
                               contexte=_context()), 400
    except SendLimited as exc:
        return limited("help_request.html", exc, schools=desk.schools(), form=form, contexte=_context())
    school = dict(desk.schools()).get(form["uai"][:8], "")
    return render_template("help_sent.html", reference=reference, school=school)
