"""The staff console: server-rendered pages under /console/ (aiohttp + Jinja2).

Sessions live in an encrypted HttpOnly SameSite cookie (aiohttp-session, Fernet); every POST
carries the session's CSRF token; anything outside the account's scope is 404, like a missing page."""
from __future__ import annotations

import hmac
import json
import secrets
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from aiohttp_session import get_session, new_session
from aiohttp_session import setup as setup_session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet

from bot.console import auth
from bot.console.receptions_pages import add_reception_pages
from bot.console.common import (
    ACCOUNT,
    DEPS,
    ConsoleDeps,
    export_response,
    filter_context,
    query_or_error,
    visible_stations,
)
from bot.core.staff import StaffAccount, StaffError, StaffRole
from bot.core.people import DutyShift
from bot.core.tickets import CATEGORIES, TicketStatus
from storage.console_queries import TABS

HERE = Path(__file__).resolve().parent
SESSION_HOURS = 10
TOTP_TRIES = 5
PUBLIC_ROUTES = {"login", "totp", "static"}
PASSWORD_ROUTES = {"password", "logout"}  # reachable before the first password is changed
JINJA = web.AppKey("console_jinja", jinja2.Environment)
CSRF = web.RequestKey("console_csrf", str)


def create_console_app(deps: ConsoleDeps) -> web.Application:
    from bot.console.ticket_actions import add_ticket_routes  # it uses this module's page helpers

    app = web.Application()
    app[DEPS] = deps
    key = deps.settings.console_secret_key or Fernet.generate_key().decode()
    setup_session(app, EncryptedCookieStorage(
        key, cookie_name="ztc_console", path="/console", httponly=True, samesite="Strict",
        secure=deps.settings.console_cookie_secure, max_age=SESSION_HOURS * 3600))
    app.middlewares.append(guard)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
    env.globals.update(t=deps.texts.get, status_label=lambda s: deps.texts.get(f"deputy_status_{s}"),
                       role_label=lambda r: deps.texts.get(f"console_role_{r}"), categories=CATEGORIES,
                       statuses=[s.value for s in TicketStatus], tabs=TABS[:-1])
    env.filters["dt"] = lambda v: v.strftime("%Y-%m-%d %H:%M") if v else ""
    env.filters["target"] = _target_label(deps)
    env.filters["pct"] = lambda v: "—" if v is None else f"{v * 100:.0f}%"
    app[JINJA] = env
    r = app.router
    r.add_static("/static", HERE / "static", name="static")
    r.add_route("*", "/login", login, name="login")
    r.add_route("*", "/totp", totp, name="totp")
    r.add_route("*", "/password", password, name="password")
    r.add_post("/logout", logout, name="logout")
    r.add_get("/", dashboard, name="dashboard")
    add_ticket_routes(r)  # the queue, the ticket page and its actions, 登记来访诉求 (ticket_actions.py)
    r.add_get("/stations", stations, name="stations")
    r.add_get("/stations/{code}/week", station_week, name="station_week")
    r.add_get("/deputies", deputies, name="deputies")
    r.add_get("/duty", duty, name="duty")
    r.add_get("/audit", audit, name="audit")
    from bot.console.admin import add_admin_routes  # here, not on top: admin.py uses this module's helpers
    add_admin_routes(app)
    from bot.console.failures import add_failure_routes  # 送不到的消息 (uses this module's helpers)
    add_failure_routes(app)
    from bot.console import live_pages  # 云直播 (imports this module: late)
    live_pages.add_routes(r)
    add_reception_pages(r)
    return app


# --- request plumbing ------------------------------------------------------------------------------
def _deps(request: web.Request) -> ConsoleDeps:
    return request.app[DEPS]


def _account(request: web.Request) -> StaffAccount:
    return request[ACCOUNT]


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    env = request.app[JINJA]
    query = dict(request.query)

    def qs(**changes: Any) -> str:
        merged = {**query, **{k: v for k, v in changes.items()}}
        return "?" + urlencode({k: v for k, v in merged.items() if v not in ("", None)})

    html = env.get_template(template).render(
        account=request.get(ACCOUNT), csrf=request.get(CSRF, ""), path=request.path, query=query, qs=qs,
        **context)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})


def _not_found(request: web.Request) -> web.Response:
    return _page(request, "message.html", status=404, title=_deps(request).texts.get("console_not_found"))


def _redirect(to: str) -> web.HTTPFound:
    return web.HTTPFound("/console" + to)


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    route = request.match_info.route.name
    if route == "static":
        return await handler(request)
    session = await get_session(request)
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    request[CSRF] = session["csrf"]
    if request.method == "POST":
        form = await request.post()
        if not hmac.compare_digest(str(form.get("csrf", "")), session["csrf"]):
            return _page(request, "message.html", status=403, title=_deps(request).texts.get("console_csrf_failed"))
    account = None
    if username := session.get("user"):
        async with _deps(request).uow_factory() as uow:
            account = await uow.staff.get(username)
        if account is None:  # the account is gone: so is the session
            session.invalidate()
    request[ACCOUNT] = account
    if route not in PUBLIC_ROUTES and account is None:
        if request.method == "GET" and route:
            raise _redirect("/login?" + urlencode({"next": request.path_qs}))
        raise _redirect("/login")
    if account is not None and account.must_change_password and route not in PASSWORD_ROUTES | PUBLIC_ROUTES:
        raise _redirect("/password")
    try:
        return await handler(request)
    except web.HTTPNotFound:  # an unknown address: the same Chinese page as a ticket out of scope
        return _not_found(request)


def _safe_next(value: str) -> str:
    # only our own pages: never an open redirect
    return value if value.startswith("/console/") and not value.startswith("//") else "/console/"


async def _signed_in(request: web.Request, username: str, next_url: str) -> web.HTTPFound:
    session = await new_session(request)  # a fresh session: no fixation
    session["user"] = username
    session["csrf"] = secrets.token_urlsafe(24)
    return web.HTTPFound(_safe_next(next_url))


# --- signing in --------------------------------------------------------------------------------------
async def login(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    if request.method != "POST":
        if request.get(ACCOUNT) is not None:
            raise _redirect("/")
        return _page(request, "login.html", next=request.query.get("next", ""))
    form = await request.post()
    username, password_text = str(form.get("username", "")).strip(), str(form.get("password", ""))
    result = await auth.authenticate(deps.uow_factory, deps.clock, username, password_text)
    if result.result is not auth.LoginResult.OK or result.account is None:
        key = "console_login_wait" if result.result is auth.LoginResult.WAIT else "console_login_wrong"
        return _page(request, "login.html", status=401, error=deps.texts.get(key), username=username,
                     next=str(form.get("next", "")))
    next_url = str(form.get("next", ""))
    if result.account.totp_secret:
        session = await new_session(request)
        session["pending"] = username
        session["pending_next"] = next_url
        session["csrf"] = secrets.token_urlsafe(24)
        raise _redirect("/totp")
    raise await _signed_in(request, username, next_url)


async def totp(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    session = await get_session(request)
    username = session.get("pending")
    if not username:
        raise _redirect("/login")
    if request.method != "POST":
        return _page(request, "totp.html")
    code = str((await request.post()).get("code", ""))
    async with deps.uow_factory() as uow:
        account = await uow.staff.get(username)
    if account is not None and auth.totp_ok(account.totp_secret, code):
        raise await _signed_in(request, username, session.get("pending_next", ""))
    session["totp_tries"] = tries = int(session.get("totp_tries", 0)) + 1
    if tries >= TOTP_TRIES:
        session.invalidate()
        return _page(request, "login.html", status=401, error=deps.texts.get("console_login_wrong"))
    return _page(request, "totp.html", status=401, error=deps.texts.get("console_totp_wrong"))


async def password(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    if request.method != "POST":
        return _page(request, "password.html")
    form = await request.post()
    new, repeat = str(form.get("new", "")), str(form.get("repeat", ""))
    try:
        if new != repeat:
            raise StaffError("console_password_mismatch")
        await auth.change_password(deps.uow_factory, deps.clock, _account(request).username,
                                   str(form.get("current", "")), new)
    except StaffError as error:
        return _page(request, "password.html", status=400, error=deps.texts.get(error.key, **error.params))
    raise await _signed_in(request, _account(request).username, "/console/")


async def logout(request: web.Request) -> web.StreamResponse:
    (await get_session(request)).invalidate()
    raise _redirect("/login")


def _target_label(deps: ConsoleDeps) -> Any:
    """"ticket:1001" → 工单 #1001; "staff:wang" → 账号 王芳 (the name where the account has one)."""
    def label(target: str, staff_names: dict[str, str]) -> str:
        kind, _, ident = target.partition(":")
        if kind == "staff":
            ident = staff_names.get(ident, ident)
        return deps.texts.get(f"console_target_{kind}", id=ident) if kind in ("ticket", "staff") else target
    return label


async def _staff_names(uow: Any) -> dict[str, str]:
    return {a.username: a.name or a.username for a in await uow.staff.list()}


# --- dashboard -------------------------------------------------------------------------------------------
def _month_range(month: str) -> tuple[str, str]:
    first = date.fromisoformat(month + "-01")
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first.isoformat(), last.isoformat()


async def dashboard(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    query, error, stations_list = await query_or_error(request)
    if query is None:
        return _page(request, "dashboard.html", status=400, error=error, charts="{}", rates={},
                     ages=[], **filter_context(stations_list))
    now = deps.clock.now()
    base = {k: v for k, v in request.query.items() if k in ("town", "station", "since", "until", "category")}
    t = deps.texts.get

    def link(**params: str) -> str:
        return "/console/tickets?" + urlencode({**base, **params})

    charts: dict[str, Any] = {}
    for by in ("town", "station", "category", "status", "month"):
        rows = await deps.queries.counts(by, query, now)
        if by == "station":
            rows = rows[:20]
        labels, values, links = [], [], []
        for key, label, n in rows:
            if by == "status":
                label, url = t(f"deputy_status_{key}"), link(status=key)
            elif by == "month":
                since, until = _month_range(key)
                url = link(since=since, until=until)
            else:
                label = label or t("console_district_queue")
                url = link(**{by: key})
            labels.append(label)
            values.append(n)
            links.append(url)
        charts[by] = {"labels": labels, "values": values, "links": links, "title": t(f"console_chart_{by}")}
    ages = await deps.queries.open_by_age(query, now)
    age_labels = [t("console_age_under", days=d) if d else t("console_age_over", days=ages[-2][0]) for d, _ in ages]
    charts["age"] = {"labels": age_labels, "values": [n for _, n in ages], "links": [link(tab="assigned")] * len(ages),
                     "title": t("console_chart_age")}
    rates = {by: await deps.queries.rates(by, query, now) for by in ("station", "deputy")}
    return _page(request, "dashboard.html", charts=json.dumps(charts, ensure_ascii=False).replace("</", "<\\/"), rates=rates,
                 min_sample=deps.queries.min_sample, resolve_days=deps.queries.resolve_days,
                 **filter_context(stations_list))


# --- stations, deputies, duty -------------------------------------------------------------------------------
def _matches(q: str, *fields: str) -> bool:
    return not q or any(q in f for f in fields)


async def stations(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    q, town = request.query.get("q", "").strip(), request.query.get("town", "").strip()
    async with deps.uow_factory() as uow:
        visible = await visible_stations(uow, _account(request).scope)
        deputies_list = await uow.deputies.list()
    per_station: dict[str, list[Any]] = defaultdict(list)
    for d in deputies_list:
        per_station[d.station_code].append(d)
    shown = [s for s in visible if (not town or s.town == town) and _matches(q, s.code, s.name, s.address, s.town)]
    t = deps.texts.get
    if (fmt := request.query.get("export", "")) in ("xlsx", "csv"):
        headers = [t(f"console_col_{c}") for c in ("code", "name", "kind", "town", "address", "deputies", "bound")]
        rows = [[s.code, s.name, str(s.kind), s.town, s.address, len(per_station[s.code]),
                 sum(1 for d in per_station[s.code] if d.openid)] for s in shown]
        return export_response(fmt, t("console_export_stations"), headers, rows)
    return _page(request, "stations.html", shown=shown, per_station=per_station,
                 towns=sorted({s.town for s in visible}))


async def deputies(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    q = request.query.get("q", "").strip()
    station, bound = request.query.get("station", "").strip(), request.query.get("bound", "")
    async with deps.uow_factory() as uow:
        visible = {s.code: s for s in await visible_stations(uow, _account(request).scope)}
        everyone = await uow.deputies.list()
        open_counts = await uow.tickets.open_counts([d.code for d in everyone])
    shown = [d for d in everyone if d.station_code in visible and (not station or d.station_code == station)
             and (bound not in ("yes", "no") or (d.openid is not None) == (bound == "yes"))
             and _matches(q, d.code, d.name, d.phone)]
    t = deps.texts.get
    if (fmt := request.query.get("export", "")) in ("xlsx", "csv"):
        headers = [t(f"console_col_{c}") for c in ("code", "person", "level", "station", "phone", "bind", "open")]
        rows = [[d.code, d.name, d.level, visible[d.station_code].name, d.phone,
                 t("console_bound" if d.openid else "console_unbound"), open_counts.get(d.code, 0)] for d in shown]
        return export_response(fmt, t("console_export_deputies"), headers, rows)
    return _page(request, "deputies.html", shown=shown, stations_by_code=visible, open_counts=open_counts)


def _on_day(shift: DutyShift, day: date) -> bool:
    return shift.day == day if isinstance(shift.day, date) else shift.day == day.isoweekday()


async def duty(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    now = deps.clock.now()
    async with deps.uow_factory() as uow:
        visible = await visible_stations(uow, _account(request).scope)
        shifts = await uow.duty.list()
        deputies_by_code = {d.code: d for d in await uow.deputies.list()}
    towns = sorted({s.town for s in visible})
    town = request.query.get("town", "") or (towns[0] if len(towns) == 1 else "")
    on_duty: dict[str, list[tuple[Any, DutyShift]]] = defaultdict(list)
    for shift in shifts:
        if shift.covers(now) and shift.deputy_code in deputies_by_code:
            on_duty[shift.station_code].append((deputies_by_code[shift.deputy_code], shift))
    board = [(tn, [s for s in visible if s.town == tn]) for tn in towns if not town or tn == town]
    return _page(request, "duty.html", board=board, on_duty=on_duty, towns=towns, town=town, now=now)


async def station_week(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    async with deps.uow_factory() as uow:
        station = await uow.stations.get(request.match_info["code"])
        if station is None or not _account(request).scope.sees_station(station):
            return _not_found(request)
        shifts = await uow.duty.list(station.code)
        deputies_by_code = {d.code: d for d in await uow.deputies.list()}
    try:
        day = date.fromisoformat(request.query.get("week", "")) if request.query.get("week") else deps.clock.now().date()
    except ValueError:
        day = deps.clock.now().date()
    monday = day - timedelta(days=day.isoweekday() - 1)
    week = [monday + timedelta(days=i) for i in range(7)]
    days = [(d, sorted((s for s in shifts if _on_day(s, d)), key=lambda s: s.start)) for d in week]
    return _page(request, "week.html", station=station, days=days, deputies=deputies_by_code,
                 prev_week=(monday - timedelta(days=7)).isoformat(), next_week=(monday + timedelta(days=7)).isoformat(),
                 today=deps.clock.now().date())


async def audit(request: web.Request) -> web.StreamResponse:
    deps = _deps(request)
    if _account(request).role is not StaffRole.DISTRICT:
        return _not_found(request)
    t = deps.texts.get
    fmt = request.query.get("export", "")
    per_page = 50
    page_no = int(p) if (p := request.query.get("page", "")).isascii() and p.isdigit() else 1  # not "²"
    async with deps.uow_factory() as uow:
        if fmt in ("xlsx", "csv"):
            page = await uow.audit.page(0, 100_000)
        else:
            page = await uow.audit.page((max(1, page_no) - 1) * per_page, per_page)
        staff_names = await _staff_names(uow)
    if fmt in ("xlsx", "csv"):
        headers = [t(f"console_col_{c}") for c in ("at", "actor", "action", "target", "before", "after")]
        rows = [[e.at, e.actor, t(f"console_audit_{e.action}"), e.target, e.before, e.after] for e in page.entries]
        return export_response(fmt, t("console_export_audit"), headers, rows)
    return _page(request, "audit.html", entries=page.entries, staff_names=staff_names, total=page.total, page_no=max(1, page_no),
                 pages=max(1, -(-page.total // per_page)))
