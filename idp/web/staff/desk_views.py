"""The inbox, the funnel (SVG and CSV) and campaigns of the console."""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from idp.core.activation.errors import FormProblem
from idp.core.staff.errors import OutOfScope
from idp.core.staff.model import CampaignTarget, StaffContext
from idp.core.staff.school import INBOX_KINDS
from idp.web.security import check_csrf
from idp.web.staff import bp, console_view, staff
from idp.web.staff.charts import (
    BAR_HEIGHT,
    BAR_LEFT,
    CLASS_LEFT,
    CLASS_ROW,
    STAGES,
    WIDTH,
    class_bars,
    funnel_bars,
    funnel_csv,
)

#: Items per page of the inbox (the list is the school's whole history when « Tous » is chosen).
INBOX_PAGE = 25
PROFILES = {"": "Élèves et représentants légaux", "student": "Élèves", "parent": "Représentants légaux"}


@bp.get("/boite")
@console_view
def inbox(ctx: StaffContext) -> ResponseReturnValue:
    """The families' reports and requests for help, new or handled, a page at a time."""
    status = request.args.get("etat", "new")
    status = status if status in ("new", "handled", "") else "new"
    uai = request.args.get("uai", "")[:8]
    items = staff().desk.inbox(ctx, uai, status)
    pages = max(1, -(-len(items) // INBOX_PAGE))
    asked = request.args.get("page", "")[:6]
    page = min(max(int(asked), 1), pages) if asked.isascii() and asked.isdigit() else 1
    return render_template("staff/inbox.html", ctx=ctx, items=items[(page - 1) * INBOX_PAGE:page * INBOX_PAGE],
                           total=len(items), page=page, pages=pages, status=status, uai=uai, kinds=INBOX_KINDS,
                           schools=staff().console.schools(ctx))


@bp.post("/boite/<kind>/<int:item_id>/traite")
@console_view
def handle(ctx: StaffContext, kind: str, item_id: int) -> ResponseReturnValue:
    """Mark an item handled; back to the family's page when it was handled from there."""
    check_csrf()
    if kind not in INBOX_KINDS:
        raise OutOfScope()
    item = staff().desk.handle(ctx, kind, item_id)
    flash("Le signalement est marqué comme traité.")
    student = request.form.get("eleve", "")
    if student.isdigit() and item.student_id == int(student):
        return redirect(url_for("staff.family", student_id=item.student_id), 303)
    return redirect(url_for("staff.inbox"), 303)


@bp.get("/entonnoir/<uai>")
@console_view
def funnel(ctx: StaffContext, uai: str) -> ResponseReturnValue:
    """Per school and class: in the register, with an account, activated, logged in this month; by route."""
    rows = staff().desk.funnel(ctx, uai[:8])
    school, classes = rows[:2], rows[2:]
    return render_template("staff/funnel.html", ctx=ctx, uai=uai[:8], school=school, classes=classes,
                           charts=[funnel_bars(r) for r in school], class_chart=class_bars(rows), stages=STAGES,
                           width=WIDTH, bar_left=BAR_LEFT, bar_height=BAR_HEIGHT, class_left=CLASS_LEFT,
                           class_row=CLASS_ROW)


@bp.get("/entonnoir/<uai>.csv")
@console_view
def funnel_export(ctx: StaffContext, uai: str) -> ResponseReturnValue:
    """The same figures as CSV (only the member's schools: another school is a 404)."""
    rows = staff().desk.funnel(ctx, uai[:8])
    with staff().console.kit.uow() as uow:
        staff().console.audit(uow, ctx, "staff.funnel_exported", None, [], {"uai": uai[:8]})
        uow.commit()
    return Response("\ufeff" + funnel_csv(rows), mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="activation-{uai[:8]}.csv"'})


@bp.get("/campagnes/<uai>")
@console_view
def campaign_page(ctx: StaffContext, uai: str) -> ResponseReturnValue:
    """Choose the population (school, class, profile) and the actions."""
    staff().desk.check_campaigns(ctx, uai[:8])
    classes = staff().console.classes(ctx, uai[:8])
    return render_template("staff/campaign.html", ctx=ctx, uai=uai[:8], classes=classes, profiles=PROFILES,
                           target=CampaignTarget(uai=uai[:8]), count=None, errors=[], force=True, end=False)


@bp.post("/campagnes/<uai>")
@console_view
def campaign_submit(ctx: StaffContext, uai: str) -> ResponseReturnValue:
    """First post: how many accounts it touches. Second (``confirmer``): run it, audited."""
    check_csrf()
    desk = staff().desk
    target = CampaignTarget(uai=uai[:8], class_code=request.form.get("classe", "")[:40],
                            profile=request.form.get("profil", ""))
    force, end = request.form.get("mot_de_passe") == "1", request.form.get("sessions") == "1"
    classes = staff().console.classes(ctx, target.uai)
    if target.class_code and target.class_code not in classes:
        raise OutOfScope()
    context = {"ctx": ctx, "uai": target.uai, "classes": classes, "profiles": PROFILES, "target": target,
               "force": force, "end": end}
    if request.form.get("confirmer") != "1":
        count = len(desk.campaign_population(ctx, target))
        return render_template("staff/campaign.html", count=count, errors=[], **context)
    expected = request.form.get("attendu", "")
    try:
        flagged, ended = desk.run_campaign(ctx, target, force_change=force, end_sessions=end,
                                           expected=int(expected) if expected.isdigit() else -1)
    except FormProblem as exc:
        count = len(desk.campaign_population(ctx, target))
        return render_template("staff/campaign.html", count=count, errors=exc.reasons, **context), 400
    flash(f"Campagne effectuée : {flagged} compte(s) devront changer de mot de passe, {ended} session(s) terminée(s).")
    return redirect(url_for("staff.campaign_page", uai=target.uai), 303)
