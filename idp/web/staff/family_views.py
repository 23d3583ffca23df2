"""The console's home, the family search, the family page and its help actions."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response as WerkzeugResponse

from idp.core.activation.errors import FormProblem
from idp.core.staff.model import StaffContext
from idp.delivery.letters import letters_pdf
from idp.web.security import check_csrf
from idp.web.staff import bp, console_view, staff

KINDS = ("student", "rep")
LABELS = {"none": "Pas de compte", "provisional": "Provisoire", "active": "Actif", "locked": "Bloqué",
          "closed": "Fermé"}
ROUTES = {"sms": "SMS", "letter": "Courrier (identifiants provisoires)", "franceconnect": "FranceConnect"}


@bp.get("")
@console_view
def home(ctx: StaffContext) -> ResponseReturnValue:
    """The schools of the member, the search form and the number of new inbox items."""
    desk = staff().desk
    new = len(desk.inbox(ctx))
    schools = staff().console.schools(ctx)
    return render_template("staff/home.html", ctx=ctx, schools=schools, new_items=new)


@bp.get("/recherche")
@console_view
def search(ctx: StaffContext) -> ResponseReturnValue:
    """Pupils of the member's schools matching a name, INE, class, identifier or phone's last digits."""
    text = request.args.get("q", "")[:100]
    found = staff().console.search(ctx, text) if text.strip() else []
    return render_template("staff/search.html", ctx=ctx, q=text, found=found, labels=LABELS)


@bp.get("/eleve/<int:student_id>")
@console_view
def family(ctx: StaffContext, student_id: int) -> ResponseReturnValue:
    """The family page: the register's view, accounts, activation history, corrections, reports."""
    console = staff().console
    fam = console.family(ctx, student_id)
    return render_template("staff/family.html", ctx=ctx, fam=fam, corrections=console.corrections(fam),
                           labels=LABELS, routes=ROUTES, errors=[])


def _back(student_id: int) -> WerkzeugResponse:
    return redirect(url_for("staff.family", student_id=student_id), 303)


def _problem(ctx: StaffContext, student_id: int, exc: FormProblem) -> ResponseReturnValue:
    console = staff().console
    fam = console.family(ctx, student_id)
    return render_template("staff/family.html", ctx=ctx, fam=fam, corrections=console.corrections(fam),
                           labels=LABELS, routes=ROUTES, errors=exc.reasons), 400


def _kind(kind: str) -> str:
    from idp.core.staff.errors import OutOfScope

    if kind not in KINDS:
        raise OutOfScope()
    return kind


@bp.post("/eleve/<int:student_id>/<kind>/<int:person_id>/courrier")
@console_view
def letter(ctx: StaffContext, student_id: int, kind: str, person_id: int) -> ResponseReturnValue:
    """New provisional credentials for one person: the printable PDF letter (never stored)."""
    check_csrf()
    try:
        issued = staff().console.reissue_letter(ctx, student_id, _kind(kind), person_id)
    except FormProblem as exc:
        return _problem(ctx, student_id, exc)
    settings = staff().auth.settings
    pdf = letters_pdf(issued, product=settings.product, login_url=settings.base_url.rstrip("/") + "/login")
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="identifiants-{kind}-{person_id}.pdf"'})


@bp.post("/eleve/<int:student_id>/<kind>/<int:person_id>/deverrouiller")
@console_view
def unlock(ctx: StaffContext, student_id: int, kind: str, person_id: int) -> ResponseReturnValue:
    """Unlock the account."""
    check_csrf()
    try:
        staff().console.unlock(ctx, student_id, _kind(kind), person_id)
    except FormProblem as exc:
        return _problem(ctx, student_id, exc)
    flash("Le compte est débloqué.")
    return _back(student_id)


@bp.post("/eleve/<int:student_id>/<kind>/<int:person_id>/sessions")
@console_view
def end_sessions(ctx: StaffContext, student_id: int, kind: str, person_id: int) -> ResponseReturnValue:
    """End every session of the account."""
    check_csrf()
    try:
        count = staff().console.end_sessions(ctx, student_id, _kind(kind), person_id)
    except FormProblem as exc:
        return _problem(ctx, student_id, exc)
    flash(f"{count} session(s) terminée(s).")
    return _back(student_id)


@bp.post("/eleve/<int:student_id>/<kind>/<int:person_id>/identifiant")
@console_view
def resend_identifier(ctx: StaffContext, student_id: int, kind: str, person_id: int) -> ResponseReturnValue:
    """Send the identifier again."""
    check_csrf()
    try:
        shown = staff().console.resend_identifier(ctx, student_id, _kind(kind), person_id)
    except FormProblem as exc:
        return _problem(ctx, student_id, exc)
    flash(f"L'identifiant a été envoyé ({shown}).")
    return _back(student_id)


@bp.post("/eleve/<int:student_id>/rep/<int:person_id>/correction")
@console_view
def correct(ctx: StaffContext, student_id: int, person_id: int) -> ResponseReturnValue:
    """Record a corrected mobile number or address (a school correction, apart from the register)."""
    check_csrf()
    try:
        staff().console.correct_contact(ctx, student_id, person_id, request.form.get("champ", ""),
                                        request.form.get("valeur", "")[:254])
    except FormProblem as exc:
        return _problem(ctx, student_id, exc)
    flash("La correction est enregistrée. Elle reste distincte du registre : le prochain import qui porte une "
          "valeur la remplacera.")
    return _back(student_id)
