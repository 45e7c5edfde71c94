"""axe-core on the clinician form's pages (form, results, errors), in the same headless Debian Chromium.

axe-core comes from the npm registry as a test dependency (package.json, package-lock.json; `make
test` runs `npm ci`, node_modules is never committed). Without it these tests skip and say why.

The served pages carry no script and a strict CSP (default-src 'self'); axe is injected by Playwright
for the test only, so this context differs from the `page` fixture's in two ways, neither of which
changes what is rendered: JavaScript is on (axe is a script; with it off add_script_tag silently runs
nothing), and `bypass_csp=True` (add_script_tag inserts an inline script, which the page's own CSP
refuses, and rightly). The CSP the service sends is unchanged and tested elsewhere.
"""
from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest

from .browser import AXE_JS, fresh_page, why_no_axe
from .test_web_browser import ACCEPTANCE, base_url, fill_panel, submit_acceptance_panel, submit_with_earlier_values  # noqa: F401 (base_url: a fixture)

pytestmark = pytest.mark.browser

# WCAG 2.0 and 2.1, levels A and AA, and Deque's best practices (one h1, landmarks, headings in order...).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


@pytest.fixture()
def axe_page(browser):
    reason = why_no_axe()
    if reason:
        pytest.skip(f"axe tests skipped: {reason}")
    yield from fresh_page(browser, java_script_enabled=True, bypass_csp=True)


def run_axe(page, name: str, capsys) -> dict:
    """axe.run on the page as it is; prints the counts (to be quoted) and every violation in full.
    Returns the violations, each with its id, impact, help and targets, and what axe left for review."""
    assert page.locator("script").count() == 0  # the page itself: no script before axe is added
    page.add_script_tag(path=str(AXE_JS))
    results = page.evaluate("""options => axe.run(document, options).then(r => ({
        version: r.testEngine.version,
        violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map(n => n.target.join(' ')), summary: v.nodes.map(n => n.failureSummary)})),
        passes: r.passes.length, incomplete: r.incomplete.map(v => v.id),
        review: r.incomplete.map(v => ({id: v.id, targets: v.nodes.map(n => n.target.join(' '))}))}))""",
                            {"runOnly": {"type": "tag", "values": AXE_TAGS}})
    nodes = sum(len(v["targets"]) for v in results["violations"])
    with capsys.disabled():
        print(f"\naxe-core {results['version']} on the {name}: {len(results['violations'])} violations "
              f"({nodes} elements), {results['passes']} rules passed, needs review: {results['incomplete'] or 'none'}")
        for v in results["violations"]:
            print(f"  {v['id']} [{v['impact']}] {v['help']}")
            for target, summary in zip(v["targets"], v["summary"]):
                print(f"    {target}: {' '.join((summary or '').split())[:300]}")
    return results


def test_axe_does_report_a_violation_when_there_is_one(axe_page, base_url, capsys):
    """So that "zero violations" below means axe ran its rules: the same run on the form with two
    planted faults (a box with no label, pale grey text) reports exactly those two."""
    axe_page.goto(base_url + "/")
    axe_page.evaluate("""() => { const form = document.querySelector('#panel-form');
        const box = document.createElement('input'); box.name = 'planted'; form.append(box);
        const pale = document.createElement('p'); pale.textContent = 'pale text'; pale.style.color = '#bbb';
        form.append(pale); }""")
    violations = run_axe(axe_page, "empty form with two planted faults (these must be found)", capsys)["violations"]
    assert {v["id"]: len(v["targets"]) for v in violations} == {"label": 1, "color-contrast": 1}, violations
    assert all(v["help"] and v["impact"] for v in violations)


def test_axe_finds_nothing_on_the_empty_form(axe_page, base_url, capsys):
    axe_page.goto(base_url + "/")
    violations = run_axe(axe_page, "empty form", capsys)["violations"]
    assert violations == [], json.dumps(violations, indent=1)


def test_axe_finds_nothing_on_the_results_page(axe_page, base_url, capsys):
    submit_acceptance_panel(axe_page, base_url)
    assert axe_page.title().startswith("Interpretation")
    results = run_axe(axe_page, "results page (acceptance panel)", capsys)
    assert results["violations"] == [], json.dumps(results["violations"], indent=1)
    # axe cannot tell the background of the range bars' tick labels (text inside an SVG image): those
    # alone are left for review, and test_text_contrast_meets_wcag_aa_on_every_page measures them.
    review = [(r["id"], t) for r in results["review"] for t in r["targets"]]
    assert review and all(i == "color-contrast" and ".tick-label" in t for i, t in review), review


def test_axe_finds_nothing_on_a_results_page_with_earlier_values(axe_page, base_url, capsys):
    """Every kind of change the page says: significant, within the limit, not judged (a censored value),
    not compared (beyond the look-back), each with its trend picture (role img, title and desc)."""
    panel = {**ACCEPTANCE, "vitamin_b12": ("<150", "pg/mL"), "albumin": ("4.0", "g/dL")}
    earlier = {"vitamin_b12": ("420", "2026-10-21"), "potassium": ("4.4", "2026-11-19"),
               "magnesium": ("1.6", "2026-11-20"), "calcium": ("9.2", "2026-11-19"), "albumin": ("4.1", "2025-01-01")}
    submit_with_earlier_values(axe_page, base_url, panel, earlier)
    assert axe_page.title().startswith("Interpretation")
    assert axe_page.locator("svg[data-testid=trend][role=img]").count() == 4
    assert axe_page.locator("[data-testid=not-compared]").count() == 1
    results = run_axe(axe_page, "results page with earlier values", capsys)
    assert results["violations"] == [], json.dumps(results["violations"], indent=1)
    review = [(r["id"], t) for r in results["review"] for t in r["targets"]]
    assert all(i == "color-contrast" and ".tick-label" in t for i, t in review), review  # as on the page without


def test_axe_finds_nothing_on_the_error_page(axe_page, base_url, capsys):
    axe_page.goto(base_url + "/")
    fill_panel(axe_page, {"potassium": ("3,1", "mmol/L"), "magnesium": ("1.5", "mmol/L")})
    axe_page.get_by_label("Age in years").fill("140")
    with axe_page.expect_navigation():
        axe_page.get_by_role("button", name="Interpret").click()
    assert axe_page.title().startswith("Correct the form")
    violations = run_axe(axe_page, "error page (invalid input)", capsys)["violations"]
    assert violations == [], json.dumps(violations, indent=1)


# What no choice on the form can send, for a page with an error on every kind of control: text, select,
# date, number, the checkbox groups' fieldsets, and the form itself (an unknown field).
EVERY_ERROR = [("potassium_value", "abc"), ("potassium_unit", "mmol/L"), ("calcium_value", "9"),
               ("calcium_unit", "furlong"), ("age", "200"), ("sex", "robot"), ("diet", "raw"),
               ("b12_injection_on", "yesterday"), ("b12_therapy_started_on", "2026-13-01"),
               ("medications", "bogus"), ("symptoms", "x"), ("conditions", "y"), ("sneaky", "1")]


def test_axe_finds_nothing_on_the_error_page_with_every_kind_of_field_in_error(axe_page, base_url, capsys):
    # The real form is submitted; its body is replaced on the way to the server, which renders the page.
    axe_page.route(base_url + "/", lambda route: route.continue_(post_data=urlencode(EVERY_ERROR))
                   if route.request.method == "POST" else route.continue_())
    axe_page.goto(base_url + "/")
    with axe_page.expect_navigation():
        axe_page.get_by_role("button", name="Interpret").click()
    assert axe_page.locator("#error-summary li").count() == 11 and axe_page.locator("#form-error").count() == 1
    assert axe_page.locator("fieldset[aria-invalid=true]").count() == 3
    violations = run_axe(axe_page, "error page (an error on every kind of field)", capsys)["violations"]
    assert violations == [], json.dumps(violations, indent=1)

