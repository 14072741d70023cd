"""The console's pages, and ``install_console`` which mounts them with their static files.

Every page goes through ``ConsoleRoute``: errors become HTML pages (with the same stable codes
the API uses) instead of problem+json, a missing session becomes a redirect to the login page,
and every answer carries the console's Content-Security-Policy and security headers. Pages run
no inline script or style, so the policy needs no ``unsafe-inline``.

Searches are submitted with POST (a person's identifier must not reach a URL, a log line or the
browser history) and shown with GET under an opaque handle: ``/console/audit?q=HANDLE``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote, urlencode

import structlog
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.datastructures import FormData

import gateway
from connectors.registry import VERSIONS
from gateway.audit.schemas import OUTCOMES
from gateway.console import service
from gateway.console.auth import (
    CSRF_FIELD,
    NAME_PATTERN,
    LoginCheck,
    LoginRequiredError,
    StaffContext,
    admin_staff,
    check_login,
    checked_form,
    cookie_policy,
    current_staff,
    log_out,
    login_form,
    new_token,
    open_session,
    session_context,
)
from gateway.console.schemas import AuditFilters, Cursor, SubjectFilter, has_control_characters
from gateway.console.throttle import client_address, minutes_to_wait
from gateway.errors import GatewayError, NotFoundError
from gateway.identifiers import NIR_SHAPE, InvalidIdentifierError
from gateway.settings import Settings

log = structlog.get_logger(__name__)

PREFIX: Final = "/console"
HERE: Final = Path(__file__).parent
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

OUTCOME_LABELS: Final = {
    "granted": ("Accordée", "success"),
    "refused": ("Refusée", "error"),
    "not_found": ("Inconnu", "info"),
    "error": ("Erreur", "warning"),
}
CONSENT_LABELS: Final = {
    "active": ("Actif", "success"),
    "revoked": ("Retiré", "error"),
    "expired": ("Expiré", "warning"),
}
ERROR_MESSAGES: Final = {
    "console.csrf_invalid": (
        "Le jeton de sécurité du formulaire est absent ou périmé. Rechargez la page et recommencez."
    ),
    "console.admin_only": "Cette page est réservée aux administrateurs.",
    "console.search_unknown": (
        "Cette recherche a expiré ou appartient à une autre personne : relancez-la."
    ),
    "console.record_unknown": "Aucun enregistrement d'audit ne porte ce numéro.",
    "console.request_invalid": "La requête est mal formée.",
    "audit.unavailable": (
        "L'action n'a pas pu être inscrite au journal d'audit ; rien n'a été affiché. "
        "Réessayez dans quelques instants."
    ),
}
LOGIN_REFUSED: Final = "Identifiant ou mot de passe incorrect."
# Shown alike whether the name exists or not (the throttle counts names that do not exist
# too), so it tells nothing about which names are staff accounts.
LOGIN_THROTTLED: Final = (
    "Trop de tentatives de connexion avec cet identifiant depuis votre poste. "
    "Réessayez dans {minutes} min."
)
# A staff account's wrong passwords since its last login: every this many, a warning for ops.
ACCOUNT_FAILURES_WARNING_EVERY: Final = 10
ERROR_TITLES: Final = {
    400: "Requête invalide",
    401: "Connexion requise",
    403: "Accès refusé",
    404: "Page introuvable",
    422: "Requête invalide",
    503: "Service momentanément indisponible",
}


# --- templates -------------------------------------------------------------------------------


def _local(value: dt.datetime | None, zone: Any) -> str:
    if value is None:
        return ""
    return value.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S")


def _duration(value: dt.timedelta | None) -> str:
    if value is None:
        return "—"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every value is escaped, partner-supplied text included
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["duration"] = _duration
    environment.globals["OUTCOME_LABELS"] = OUTCOME_LABELS
    environment.globals["CONSENT_LABELS"] = CONSENT_LABELS
    return environment


TEMPLATES: Final = _environment()


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    staff: StaffContext | None = None,
    **context: Any,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    zone = service.legal_zone(settings)
    html = TEMPLATES.get_template(template).render(
        staff=staff,
        csrf_field=CSRF_FIELD,
        dsfr=getattr(request.app.state, "console_dsfr", False),
        path=request.url.path,
        local=lambda value: _local(value, zone),
        zone_name=settings.legal_timezone,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def error_page(request: Request, status: int, code: str, detail: str) -> HTMLResponse:
    staff = getattr(request.state, "staff", None)
    return render(
        request,
        "error.html",
        status_code=status,
        staff=staff,
        title=ERROR_TITLES.get(status, "Erreur"),
        message=ERROR_MESSAGES.get(code, detail),
        code=code,
    )


# --- the route class every page shares ------------------------------------------------------


def _login_redirect(request: Request) -> RedirectResponse:
    target = f"{PREFIX}/login"
    if request.method == "GET":
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?" + urlencode({"next": wanted})
    return RedirectResponse(target, status_code=303)


def secure_headers(response: Response, settings: Settings) -> None:
    for name, value in _SECURITY_HEADERS.items():
        response.headers[name] = value
    if cookie_policy(settings).secure:
        response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"


class ConsoleRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequiredError:
                response = _login_redirect(request)
            except GatewayError as exc:
                response = error_page(request, exc.status, exc.code, exc.detail)
                for name, value in exc.headers.items():
                    response.headers[name] = value
            except RequestValidationError:
                # Never echo the input back: it may be a NIR typed in the wrong field.
                response = error_page(
                    request, 422, "console.request_invalid", "The request is malformed."
                )
            secure_headers(response, request.app.state.settings)
            return response

        return console_handler


router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _db(request: Request) -> Any:
    return request.app.state.db


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- sign in and out -------------------------------------------------------------------------


def _safe_next(value: object) -> str:
    """Where to go after login: a console path only, never another site."""
    if (
        isinstance(value, str)
        and value.startswith(PREFIX + "/")
        and not value.startswith("//")
        and "\\" not in value
        and len(value) < 512
        and not value.startswith(f"{PREFIX}/login")
    ):
        return value
    return f"{PREFIX}/audit"


def _login_page(
    request: Request,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    next_path: object = None,
) -> HTMLResponse:
    policy = cookie_policy(_settings(request))
    token = new_token()
    response = render(
        request,
        "login.html",
        status_code=status,
        login_token=token,
        next=_safe_next(next_path or request.query_params.get("next")),
        error=error,
        notice=notice,
    )
    policy.set(response, policy.login_cookie, token)
    return response


@router.get("/login")
async def login_page(request: Request) -> Response:
    policy = cookie_policy(_settings(request))
    token = request.cookies.get(policy.session_cookie)
    if await session_context(_db(request), _settings(request), token) is not None:
        return _see_other(_safe_next(request.query_params.get("next")))
    notice = "Vous êtes déconnecté." if request.query_params.get("out") == "1" else None
    return _login_page(request, notice=notice)


@router.post("/login")
async def login(request: Request, form: FormData = Depends(login_form)) -> Response:
    name = form.get("name")
    password = form.get("password")
    name = name.strip().lower() if isinstance(name, str) else ""
    password = password if isinstance(password, str) else ""
    address = client_address(request)
    checked = await check_login(_db(request), name, password, address)
    shown_name = name if NAME_PATTERN.fullmatch(name) else "(invalid)"
    client_id = f"staff:{shown_name}"
    if checked.account is None:
        throttled = checked.failure == "login.throttled"
        status = 429 if throttled else 401
        await service.record_staff_action(
            request, client_id, "staff.login", "refused", status, reason_code=checked.failure
        )
        _log_refused_login(checked, shown_name, address)
        if throttled:
            message = LOGIN_THROTTLED.format(minutes=minutes_to_wait(checked.retry_after))
        else:
            message = LOGIN_REFUSED
        page = _login_page(request, status=status, error=message, next_path=form.get("next"))
        if throttled:
            page.headers["Retry-After"] = str(checked.retry_after)
        return page
    # Recorded before the session exists: a login the trail cannot record opens nothing.
    await service.record_staff_action(request, client_id, "staff.login", "granted", 303)
    context, token = await open_session(_db(request), checked.account)
    log.info("console_login", staff=context.name)
    policy = cookie_policy(_settings(request))
    response = _see_other(_safe_next(form.get("next")))
    # A session cookie (no Max-Age): closing the browser ends it on the client side too.
    policy.set(response, policy.session_cookie, token)
    policy.clear(response, policy.login_cookie)
    return response


def _log_refused_login(checked: LoginCheck, name: str, address: str) -> None:
    """Log a refused login so that ops see guessing (never the password; the name only when
    it is shaped like one, as the audit record has it)."""
    context = {"reason": checked.failure, "staff": name, "client_address": address}
    if checked.failure == "login.throttled":
        log.warning("console_login_throttled", retry_after=checked.retry_after, **context)
        return
    log.info(
        "console_login_refused",
        attempt=checked.rank,
        account_failures=checked.account_failures,
        **context,
    )
    if checked.fills_allowance:
        # The next attempt from this address for this name will be throttled.
        log.warning("console_login_failures_repeated", attempts=checked.rank, **context)
    failures = checked.account_failures
    if failures is not None and failures % ACCOUNT_FAILURES_WARNING_EVERY == 0:
        # Wrong passwords for one account from any address: a spread-out guessing attack.
        log.warning("console_account_failures_repeated", account_failures=failures, **context)


@router.post("/logout")
async def logout(
    request: Request,
    staff: StaffContext = Depends(current_staff),
    form: FormData = Depends(checked_form),
) -> Response:
    await log_out(_db(request), staff)
    await service.record_staff_action(
        request, staff.audit_client_id, "staff.logout", "granted", 303
    )
    policy = cookie_policy(_settings(request))
    response = _see_other(f"{PREFIX}/login?out=1")
    policy.clear(response, policy.session_cookie)
    return response


@router.get("")
@router.get("/")
async def home(staff: StaffContext = Depends(current_staff)) -> Response:
    return _see_other(f"{PREFIX}/audit")


# --- audit search ----------------------------------------------------------------------------


def _form_values(filters: AuditFilters | None) -> dict[str, str]:
    """What the search form shows for saved filters (never the subject: it is not kept)."""
    if filters is None:
        return {}
    connector = filters.connector or ""
    if connector and filters.connector_version is not None:
        connector = f"{connector}.v{filters.connector_version}"
        version = ""
    else:
        version = "" if filters.connector_version is None else str(filters.connector_version)
    return {
        "date_from": filters.date_from.isoformat() if filters.date_from else "",
        "date_to": filters.date_to.isoformat() if filters.date_to else "",
        "partner_id": "" if filters.partner_id is None else str(filters.partner_id),
        "client_id": filters.client_id or "",
        "connector": connector,
        "connector_version": version,
        "purpose": filters.purpose or "",
        "outcome": filters.outcome or "",
        "reason": filters.reason or "",
    }


async def _search_page(
    request: Request,
    staff: StaffContext,
    *,
    filters: AuditFilters,
    handle: str | None,
    after: Cursor | None,
    status: int = 200,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> HTMLResponse:
    page = await service.search_page(
        _db(request), filters, service.legal_zone(_settings(request)), after=after
    )
    return render(
        request,
        "audit_list.html",
        status_code=status,
        staff=staff,
        page=page,
        filters=filters,
        handle=handle,
        first_page=after is None,
        values=values if values is not None else _form_values(filters),
        errors=errors or {},
        partners=sorted(page.partner_names.items(), key=lambda item: item[1].lower()),
        connectors=service.connector_choices(VERSIONS),
        outcome_options=[(o, OUTCOME_LABELS[o][0]) for o in sorted(OUTCOMES)],
        query_of=lambda **params: urlencode({k: v for k, v in params.items() if v}),
    )


@router.get("/audit")
async def audit_list(
    request: Request,
    q: str | None = None,
    after: str | None = None,
    staff: StaffContext = Depends(current_staff),
) -> Response:
    filters = AuditFilters()
    if q:
        filters = await service.load_search(_db(request), staff, "audit", q)
    return await _search_page(
        request, staff, filters=filters, handle=q or None, after=Cursor.decode(after)
    )


async def _subject_from(
    request: Request, staff: StaffContext, form: FormData, errors: dict[str, str]
) -> tuple[SubjectFilter | None, bool]:
    """The subject filter of a search form: typed now, or kept from the search refined."""
    typed = form.get("subject")
    if isinstance(typed, str) and typed.strip():
        try:
            subject = await service.resolve_subject(
                _db(request), request.app.state.audit.pseudonymiser, typed
            )
        except InvalidIdentifierError as exc:
            # The reason is fixed text: the identifier is not echoed back.
            errors["subject"] = f"Identifiant invalide : {exc.reason}."
            return None, False
        return subject, True
    kept = form.get("keep_subject")
    if isinstance(kept, str) and kept:
        previous = await service.load_search(_db(request), staff, "audit", kept)
        return previous.subject, False
    return None, False


@router.post("/audit/search")
async def audit_search(
    request: Request,
    staff: StaffContext = Depends(current_staff),
    form: FormData = Depends(checked_form),
) -> Response:
    errors: dict[str, str] = {}
    subject, typed_now = await _subject_from(request, staff, form, errors)
    filters, field_errors = service.filters_from_form(form, subject)
    errors.update(field_errors)
    if filters is not None and filters.subject is not None and not filters.reason:
        errors["reason"] = "Indiquez le motif de toute recherche portant sur une personne."
    if errors or filters is None:
        # Shown again so staff can correct them; never the subject, nor anything NIR-shaped.
        values = {
            name: value
            for name, value in form.items()
            if isinstance(value, str)
            and name not in ("subject", CSRF_FIELD)
            and not NIR_SHAPE.search(value)
            and not has_control_characters(value)
        }
        return await _search_page(
            request,
            staff,
            filters=AuditFilters(),
            handle=None,
            after=None,
            status=422,
            values=values,
            errors=errors,
        )
    if typed_now:
        await service.record_staff_action(
            request,
            staff.audit_client_id,
            "staff.search_subject",
            "granted",
            303,
            subject=filters.subject,
            case_reference=filters.reason,
        )
    handle = await service.save_search(_db(request), staff, "audit", filters)
    return _see_other(f"{PREFIX}/audit?q={quote(handle)}")


@router.get("/audit/export.csv")
async def audit_export(
    request: Request, q: str | None = None, staff: StaffContext = Depends(current_staff)
) -> Response:
    filters = AuditFilters()
    if q:
        filters = await service.load_search(_db(request), staff, "audit", q)
    await service.record_staff_action(
        request,
        staff.audit_client_id,
        "staff.export",
        "granted",
        200,
        subject=filters.subject,
        case_reference=filters.reason,
    )
    zone = service.legal_zone(_settings(request))
    stamp = dt.datetime.now(zone).strftime("%Y%m%d-%H%M%S")
    return StreamingResponse(
        service.export_csv(_db(request), filters, zone),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )


@router.get("/audit/records/{record_id}")
async def audit_record(
    request: Request,
    record_id: int,
    q: str | None = None,
    staff: StaffContext = Depends(current_staff),
) -> Response:
    if not 0 < record_id < 2**63:
        raise NotFoundError("console.record_unknown", "No audit record has this number.")
    detail = await service.record_detail(_db(request), record_id)
    back = f"{PREFIX}/audit" + (f"?q={quote(q)}" if q else "")
    return render(request, "record.html", staff=staff, detail=detail, back=back)


# --- a person's right of access --------------------------------------------------------------


@router.get("/subject")
async def subject_form(request: Request, staff: StaffContext = Depends(current_staff)) -> Response:
    return render(request, "subject_form.html", staff=staff, errors={}, reason="")


@router.post("/subject")
async def subject_lookup(
    request: Request,
    staff: StaffContext = Depends(current_staff),
    form: FormData = Depends(checked_form),
) -> Response:
    errors: dict[str, str] = {}
    typed = form.get("subject")
    reason = form.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not reason:
        errors["reason"] = "Indiquez le motif de la consultation (référence de la demande)."
    elif message := service.free_text_error(reason, service.FREE_TEXT_FIELDS["reason"]):
        errors["reason"] = message
    subject = None
    if not isinstance(typed, str) or not typed.strip():
        errors["subject"] = "Saisissez le NIR ou le SIREN de la personne."
    else:
        try:
            subject = await service.resolve_subject(
                _db(request), request.app.state.audit.pseudonymiser, typed
            )
        except InvalidIdentifierError as exc:
            errors["subject"] = f"Identifiant invalide : {exc.reason}."
    if errors or subject is None:
        return render(
            request,
            "subject_form.html",
            status_code=422,
            staff=staff,
            errors=errors,
            reason="" if "reason" in errors else reason,
        )
    await service.record_staff_action(
        request,
        staff.audit_client_id,
        "staff.subject_access",
        "granted",
        303,
        subject=subject,
        case_reference=reason,
    )
    filters = AuditFilters(subject=subject, reason=reason)
    handle = await service.save_search(_db(request), staff, "subject", filters)
    return _see_other(f"{PREFIX}/subject/{quote(handle)}")


@router.get("/subject/{handle}")
async def subject_page(
    request: Request, handle: str, staff: StaffContext = Depends(current_staff)
) -> Response:
    filters = await service.load_search(_db(request), staff, "subject", handle)
    assert filters.subject is not None  # noqa: S101 - a subject search always has one
    report = await service.subject_report(_db(request), filters.subject)
    return render(
        request,
        "subject.html",
        staff=staff,
        report=report,
        subject=filters.subject,
        reason=filters.reason or "",
    )


# --- integrity -------------------------------------------------------------------------------


@router.get("/integrity")
async def integrity(request: Request, staff: StaffContext = Depends(current_staff)) -> Response:
    status = await service.integrity_status(_db(request))
    return render(request, "integrity.html", staff=staff, status=status)


@router.post("/integrity/verify")
async def integrity_verify(
    request: Request,
    staff: StaffContext = Depends(admin_staff),
    form: FormData = Depends(checked_form),
) -> Response:
    run = await service.run_verification(_db(request), request.app.state.audit.signer, staff)
    await service.record_staff_action(
        request,
        staff.audit_client_id,
        "staff.verify",
        "granted",
        303,
        reason_code=run.problem_code,
    )
    return _see_other(f"{PREFIX}/integrity")


# --- the partner registry (admin) ------------------------------------------------------------


@router.get("/partners")
async def partners(request: Request, staff: StaffContext = Depends(admin_staff)) -> Response:
    data = await service.registry(_db(request))
    return render(request, "partners.html", staff=staff, **data)


@router.get("/clients")
async def clients(request: Request, staff: StaffContext = Depends(admin_staff)) -> Response:
    data = await service.registry(_db(request))
    return render(request, "clients.html", staff=staff, **data)


@router.get("/habilitations")
async def habilitations(request: Request, staff: StaffContext = Depends(admin_staff)) -> Response:
    data = await service.registry(_db(request))
    today = dt.datetime.now(service.legal_zone(_settings(request))).date()
    return render(request, "habilitations.html", staff=staff, today=today, **data)


# --- mounting --------------------------------------------------------------------------------


def dsfr_directory(settings: Settings) -> Path:
    """Where the DSFR's dist/ folder is: the setting, else the repository's node_modules, else
    a copy shipped inside the package (``static/dsfr``, as a container image may build it)."""
    if settings.dsfr_dir is not None:
        return settings.dsfr_dir
    checkout = Path(gateway.__file__).resolve().parent.parent / "node_modules/@gouvfr/dsfr/dist"
    packaged = HERE / "static" / "dsfr"
    return packaged if not checkout.is_dir() and packaged.is_dir() else checkout


def install_console(app: FastAPI, settings: Settings) -> None:
    """Mount the console's pages, its own static files and the DSFR's under /console."""
    dsfr = dsfr_directory(settings)
    app.state.console_dsfr = (dsfr / "dsfr.min.css").is_file()
    if app.state.console_dsfr:
        app.mount(f"{PREFIX}/static/dsfr", StaticFiles(directory=dsfr), name="console-dsfr")
    else:
        log.warning("console_dsfr_missing", directory=str(dsfr), hint="run npm ci")
    app.mount(
        f"{PREFIX}/static/console", StaticFiles(directory=HERE / "static"), name="console-static"
    )
    app.include_router(router)
