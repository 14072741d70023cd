"""The ops console as staff use it: keyboard, forms, search, record, export, right of access.

Every test also fails if a page breaks its Content-Security-Policy or if a script smuggled
into the audit trail (a partner's ``Case-Reference``) runs: see the ``page`` fixture.
"""

from __future__ import annotations

import csv
import io
import re

from browser_support import XSS_CASE_REFERENCE, Site, screenshot
from playwright.sync_api import Page, expect

from tests.gateway.console.console_support import ADMIN, AUDITOR

UNLABELLED_FIELDS = """
() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(field => field.labels.length === 0)
    .map(field => field.name)
"""


def log_in(page: Page, name: str, password: str) -> None:
    page.goto("/console/login")
    page.get_by_label("Identifiant").fill(name)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", level=1, name="Journal d'audit")).to_be_visible()


def test_login_with_the_keyboard_alone(page: Page) -> None:
    page.goto("/console/audit")
    # Not signed in: the console sends to its login page, remembering where to go.
    expect(page).to_have_url(re.compile(r"/console/login\?next=%2Fconsole%2Faudit$"))
    assert page.evaluate(UNLABELLED_FIELDS) == []
    screenshot(page, "01-login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    page.get_by_label("Identifiant").focus()
    page.keyboard.type(AUDITOR[0])
    page.keyboard.press("Tab")
    page.keyboard.type(AUDITOR[1])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Journal d'audit")).to_be_visible()
    expect(page.locator(".console-whoami").first).to_contain_text("alice")


def test_a_wrong_password_is_refused(page: Page) -> None:
    page.goto("/console/login")
    page.get_by_label("Identifiant").fill(AUDITOR[0])
    page.get_by_label("Mot de passe").fill("not the password at all")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("alert")).to_contain_text("Identifiant ou mot de passe incorrect")


def test_search_by_partner_open_a_record_export_and_log_out(page: Page, site: Site) -> None:
    log_in(page, *AUDITOR)
    assert page.evaluate(UNLABELLED_FIELDS) == []
    screenshot(page, "02-audit-journal")

    page.get_by_label("Partenaire").select_option(label="CAF de Paris")
    page.get_by_label(re.compile(r"^Du\b")).fill("2026-03-01")
    page.get_by_label(re.compile(r"^Au\b")).fill("2026-03-31")
    page.get_by_role("button", name="Rechercher").click()
    expect(page).to_have_url(re.compile(r"/console/audit\?q=[A-Za-z0-9_-]+$"))
    rows = page.locator("#resultats tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator("#resultats tbody")).not_to_contain_text("Pôle emploi")
    # Newest first: the seeded March traffic ends with RSA-2026-0059.
    expect(rows.first).to_contain_text("RSA-2026-0059")
    screenshot(page, "03-audit-search-partner")

    page.get_by_role("link", name="Plus anciens").click()
    expect(rows).to_have_count(10)
    expect(rows.last).to_contain_text("RSA-2026-0000")
    page.get_by_role("link", name="Revenir aux plus récents").click()
    expect(rows.first).to_contain_text("RSA-2026-0059")

    page.get_by_role("link", name=re.compile(r"^Enregistrement \d+$")).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Enregistrement n°")
    expect(page.locator("#reference-dossier")).to_have_text("RSA-2026-0059")
    screenshot(page, "04-audit-record")
    page.get_by_role("link", name="Retour aux résultats").click()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Exporter en CSV").click()
    download = download_info.value
    assert re.fullmatch(r"audit-\d{8}-\d{6}\.csv", download.suggested_filename)
    rows_exported = list(csv.DictReader(io.StringIO(download.path().read_text("utf-8"))))
    assert len(rows_exported) == 60
    assert {row["partner"] for row in rows_exported} == {"CAF de Paris"}
    assert [row["case_reference"] for row in rows_exported[:2]] == [
        "RSA-2026-0059",
        "RSA-2026-0058",
    ]
    assert all(row["occurred_at"].startswith("2026-03") for row in rows_exported)

    page.get_by_role("button", name="Se déconnecter").click()
    expect(page.get_by_text("Vous êtes déconnecté.")).to_be_visible()
    page.goto("/console/audit")
    expect(page).to_have_url(re.compile(r"/console/login"))


def test_subject_page_and_search_by_subject_never_put_the_nir_in_a_url(
    page: Page, site: Site
) -> None:
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    log_in(page, *AUDITOR)

    page.get_by_role("link", name="Droit d'accès").click()
    assert page.evaluate(UNLABELLED_FIELDS) == []
    page.get_by_label("NIR ou SIREN de la personne").fill(site.nir)
    page.get_by_label("Motif").fill("Demande d'accès n° 2026-042")
    page.get_by_role("button", name="Consulter").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Relevé des communications de données"
    )
    disclosures = page.locator("#table-communications tbody tr")
    expect(disclosures).to_have_count(2)
    expect(disclosures.nth(0)).to_contain_text("CAF de Paris")
    expect(disclosures.nth(1)).to_contain_text("Pôle emploi")
    expect(disclosures.nth(1)).to_contain_text("JOB_SEEKING")
    expect(page.locator("#table-consentements tbody tr")).to_have_count(1)
    expect(page.locator("#table-consentements")).to_contain_text("Actif")
    expect(page.locator("#table-refus tbody tr")).to_have_count(1)
    expect(page.locator("#table-refus")).to_contain_text("consent.missing")
    expect(page.locator("#table-consultations")).to_contain_text("Demande d'accès n° 2026-042")
    expect(page.get_by_role("button", name="Imprimer")).to_be_visible()
    screenshot(page, "05-subject-page")
    page.emulate_media(media="print")
    screenshot(page, "06-subject-page-print")
    page.emulate_media(media="screen")

    page.get_by_role("link", name="Journal d'audit").click()
    page.get_by_label("NIR ou SIREN").fill(site.nir)
    page.get_by_label("Motif de la recherche").fill("Enquête 2026-7")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("status")).to_contain_text("Filtre personne actif")
    rows = page.locator("#resultats tbody tr")
    # Every record naming the person: disclosures, the consent given, the refusal for want of
    # consent, and the staff's own lookups (this search included); nobody else's.
    expect(rows.filter(has_text="CAF de Paris")).to_have_count(2)
    expect(rows.filter(has_text="Pôle emploi")).to_have_count(1)
    expect(rows.filter(has_text="CNAM")).to_have_count(1)
    expect(rows.filter(has_text="staff.subject_access")).to_have_count(1)
    expect(rows.filter(has_text="staff.search_subject")).to_have_count(1)
    expect(rows).to_have_count(6)
    screenshot(page, "07-audit-search-subject")
    assert page.get_by_label("NIR ou SIREN").input_value() == ""
    assert site.nir not in page.content()
    assert all(site.nir not in url for url in urls)


def test_a_script_in_a_case_reference_renders_as_text(page: Page) -> None:
    log_in(page, *AUDITOR)
    page.get_by_label("Données (connecteur et version)").select_option("turnover.v2")
    page.get_by_label("Issue").select_option("granted")
    page.get_by_label(re.compile(r"^Du\b")).fill("2026-04-01")
    page.get_by_role("button", name="Rechercher").click()
    cell = page.locator("#resultats td", has_text="<script>")
    expect(cell).to_have_text(XSS_CASE_REFERENCE)
    page.get_by_role("link", name=re.compile(r"^Enregistrement \d+$")).last.click()
    expect(page.locator("#reference-dossier")).to_have_text(XSS_CASE_REFERENCE)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#reference-dossier script, #reference-dossier img").count() == 0


def test_an_auditor_cannot_reach_admin_pages(page: Page) -> None:
    log_in(page, *AUDITOR)
    navigation = page.get_by_role("navigation", name="Menu principal")
    expect(navigation.get_by_role("link", name="Partenaires")).to_have_count(0)
    for path in ("/console/partners", "/console/clients", "/console/habilitations"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 403
        expect(page.get_by_role("heading", level=1)).to_have_text("Accès refusé")
    screenshot(page, "08-forbidden")
    page.goto("/console/integrity")
    expect(page.get_by_role("button", name=re.compile("Vérifier"))).to_have_count(0)


def test_an_admin_sees_the_registry_and_runs_a_verification(page: Page) -> None:
    log_in(page, *ADMIN)
    navigation = page.get_by_role("navigation", name="Menu principal")
    navigation.get_by_role("link", name="Partenaires").click()
    expect(page.locator("#table-partenaires tbody tr")).to_have_count(3)
    screenshot(page, "09-partners")
    navigation.get_by_role("link", name="Habilitations").click()
    expect(page.locator("#table-habilitations")).to_contain_text("JOB_SEEKING")
    screenshot(page, "10-habilitations")
    navigation.get_by_role("link", name="Clients").click()
    expect(page.locator("#table-clients tbody tr")).to_have_count(3)

    navigation.get_by_role("link", name="Intégrité").click()
    page.get_by_role("button", name="Vérifier toute la chaîne maintenant").click()
    expect(page.locator("#tuile-verification")).to_contain_text("Chaîne intacte")
    expect(page.locator("#tuile-verification")).to_contain_text("par root")
    expect(page.locator("#tuile-point-de-controle")).to_contain_text("Position")
    screenshot(page, "11-integrity")


def test_a_form_posted_without_its_csrf_token_is_refused(page: Page) -> None:
    log_in(page, *AUDITOR)
    page.evaluate("document.querySelector('#filtres input[name=csrf_token]').remove()")
    page.get_by_label("Partenaire").select_option(label="CAF de Paris")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Accès refusé")
    expect(page.get_by_role("alert")).to_contain_text("console.csrf_invalid")
    screenshot(page, "12-csrf-refused")
