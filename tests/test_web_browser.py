"""The clinician form in a real browser: headless Debian Chromium, JavaScript off, real gunicorn."""
from __future__ import annotations

import re

import pytest

from service.core import load_knowledge
from service.web.form import LIST_FIELDS, analyte_fields, field_labels

from .browser import accessibility_nodes, all_accessible_names
from .conftest import ROOT
from .servers import free_port, start_gunicorn, stop, wait_ready

pytestmark = pytest.mark.browser
SCREENSHOTS = ROOT / "test-output" / "browser"
KB = load_knowledge()
SEED_FILE = re.compile(r"\b\d{3}_[0-9a-f]{16}\.txt\b")  # a seed document's file name: 001_eb066d96f24a82f2.txt

ACCEPTANCE = {"vitamin_b12": ("180", "pg/mL"), "potassium": ("3.1", "mmol/L"),
              "magnesium": ("1.5", "mg/dL"), "calcium": ("8.1", "mg/dL")}
COLLECTED, INJECTED = "2026-11-21", "2026-11-19"  # the injection two days before collection


@pytest.fixture(scope="module")
def base_url(tmp_path_factory):
    port = free_port()
    proc = start_gunicorn(port, tmp_path_factory.mktemp("web") / "gunicorn.log")
    try:
        wait_ready(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def fill_panel(page, panel: dict[str, tuple[str, str]]) -> None:
    """By the controls' accessible names, as voice control or a screen reader's form list reaches them."""
    for analyte, (value, unit) in panel.items():
        value_box(page, analyte).fill(value)
        page.get_by_role("combobox", name=f"{analyte_label(analyte)} unit", exact=True).select_option(unit)


def analyte_label(analyte: str) -> str:
    """The analyte's name in the knowledge ("Vitamin B12 (cobalamin)"), which its controls' names begin with."""
    return KB.analytes[analyte].name


def value_box(page, analyte: str):
    optional = " (optional)" if analyte in KB.adjusting else ""
    return page.get_by_role("textbox", name=f"{analyte_label(analyte)} value{optional}", exact=True)


def centre_x(locator) -> float:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2


def submit_acceptance_panel(page, base_url: str):
    page.goto(base_url + "/")
    fill_panel(page, ACCEPTANCE)
    page.get_by_label("Collected on").fill(COLLECTED)
    page.get_by_label("Last vitamin B12 injection").fill(INJECTED)
    page.get_by_label("B12 replacement started").fill(INJECTED)  # the first dose: potassium may fall
    with page.expect_navigation():
        page.get_by_role("button", name="Interpret").click()


def test_the_acceptance_panel_is_interpreted_and_drawn(page, base_url):
    submit_acceptance_panel(page, base_url)
    assert page.title().startswith("Interpretation")
    bands = {a: page.locator(f"#result-{a} [data-testid=band]").inner_text() for a in ACCEPTANCE}
    assert bands == {"vitamin_b12": "deficient (L)", "potassium": "low (L)",
                     "magnesium": "low (L)", "calcium": "low (L)"}
    assert page.locator("[data-testid=critical]").count() == 0
    b12 = page.locator("#result-vitamin_b12")
    assert b12.locator("[data-testid=entered]").inner_text() == "Entered: 180 pg/mL"
    notes = b12.locator(".note")
    assert "b12-recent-injection" in [notes.nth(i).get_attribute("data-note-id") for i in range(notes.count())]
    sources = b12.locator(".note .sources").first
    assert "Vitamin B12 Assay, Serum (Mayo Clinic Laboratories" in sources.inner_text()  # cited by title
    assert ".txt" not in page.locator("#report").inner_text()  # seed documents by title, not file name
    panel = page.locator("#panel-notes .note")
    assert panel.count() >= 1 and "potassium-low-after-b12-injection" in [
        panel.nth(i).get_attribute("data-note-id") for i in range(panel.count())]
    assert re.fullmatch(r"\d{4}\.\d+\.\d+", page.get_by_test_id("knowledge-version").inner_text())
    assert "not a diagnosis" in page.locator("#disclaimer").inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "results-acceptance-panel.png"), full_page=True)


def test_the_marker_sits_between_the_limits_it_falls_between(page, base_url):
    submit_acceptance_panel(page, base_url)
    k = page.locator("#result-potassium")
    ticks = {float(t.get_attribute("data-value")): centre_x(t) for t in k.locator("line.tick").all()}
    marker = centre_x(k.locator("[data-testid=marker] line"))
    assert ticks[2.8] < marker < ticks[3.5]  # 3.1 mmol/L: above the critical limit, below normal
    bar = k.locator("svg[data-testid=range-bar]")
    lo, hi = float(bar.get_attribute("data-scale-min")), float(bar.get_attribute("data-scale-max"))
    # Where 3.1 falls on the drawn scale, measured from the rendered limit lines.
    expected = ticks[2.8] + (ticks[3.5] - ticks[2.8]) * (3.1 - 2.8) / (3.5 - 2.8)
    assert abs(marker - expected) < 1.5 and lo < 3.1 < hi
    b12 = page.locator("#result-vitamin_b12")
    b12_ticks = {float(t.get_attribute("data-value")): centre_x(t) for t in b12.locator("line.tick").all()}
    assert centre_x(b12.locator("[data-testid=marker] line")) < b12_ticks[200.0]
    assert b12.locator("rect.seg[data-band=deficient]").count() == 1
    assert page.locator("[data-testid=off-scale]").count() == 0


def test_a_value_off_the_scale_is_clamped_and_says_so(page, base_url):
    page.goto(base_url + "/")
    fill_panel(page, {"potassium": ("1.2", "mmol/L"), "vitamin_b12": ("25000", "pg/mL")})
    with page.expect_navigation():
        page.get_by_role("button", name="Interpret").click()
    k = page.locator("#result-potassium")
    assert k.locator("[data-testid=band]").inner_text() == "critically low (LL)"
    assert k.locator("[data-testid=critical]").is_visible()
    svg = k.locator("svg[data-testid=range-bar]").bounding_box()
    assert abs(centre_x(k.locator("[data-testid=marker] line")) - svg["x"] - svg["width"] * 8 / 416) < 2
    assert "below the scale" in k.get_by_test_id("off-scale").inner_text()
    b12 = page.locator("#result-vitamin_b12")
    assert b12.locator("[data-testid=band]").inner_text() == "implausible"
    assert "above the scale" in b12.get_by_test_id("off-scale").inner_text()
    assert b12.get_by_test_id("marker").get_attribute("data-off-scale") == "above"


def test_invalid_input_comes_back_with_the_values_kept_and_errors_by_the_fields(page, base_url):
    page.goto(base_url + "/")
    fill_panel(page, {"potassium": ("3,1", "mmol/L"), "magnesium": ("1.5", "mmol/L")})
    page.get_by_label("Age in years").fill("140")
    with page.expect_navigation():
        page.get_by_role("button", name="Interpret").click()
    assert page.title().startswith("Correct the form")
    value = value_box(page, "potassium")
    assert value.input_value() == "3,1" and value.get_attribute("aria-invalid") == "true"
    error_id = value.get_attribute("aria-describedby")
    assert "not a number" in page.locator(f"#{error_id}").inner_text()
    age = page.get_by_label("Age in years")
    assert age.input_value() == "140"
    assert "130" in page.locator(f"#{age.get_attribute('aria-describedby')}").inner_text()
    assert page.locator("#magnesium_unit").input_value() == "mmol/L"  # kept, and valid
    assert value_box(page, "magnesium").get_attribute("aria-invalid") is None
    summary = page.locator("#error-summary a")
    assert summary.count() == 2 and summary.first.get_attribute("href") == "#potassium_value"
    assert summary.first.inner_text() == "Potassium value"  # the field's label, as the page shows it
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "form-with-errors.png"), full_page=True)


def earlier_value_box(page, analyte: str):
    return page.get_by_role("textbox", name=f"{analyte_label(analyte)} earlier value (optional, same unit)", exact=True)


def fill_earlier(page, earlier: dict[str, tuple[str, str]]) -> None:
    """An earlier value and its day per analyte, by the controls' accessible names."""
    for analyte, (value, day) in earlier.items():
        earlier_value_box(page, analyte).fill(value)
        page.get_by_label(f"{analyte_label(analyte)} earlier value taken on", exact=True).fill(day)


EARLIER = {"potassium": ("4.4", "2026-11-19")}  # two days before COLLECTED: 4.4 to 3.0 mmol/L is a fall of 1.4


def submit_with_earlier_values(page, base_url: str, panel=None, earlier=None):
    page.goto(base_url + "/")
    fill_panel(page, panel or {"potassium": ("3.0", "mmol/L")})
    fill_earlier(page, earlier or EARLIER)
    page.get_by_label("Collected on").fill(COLLECTED)
    with page.expect_navigation():
        page.get_by_role("button", name="Interpret").click()


def test_an_earlier_value_shows_the_change_and_a_trend_a_screen_reader_can_read(page, base_url):
    submit_with_earlier_values(page, base_url)
    assert page.title().startswith("Interpretation")
    k = page.locator("#result-potassium")
    assert k.get_by_test_id("previous").inner_text() == "Earlier value: 4.4 mmol/L on 2026-11-19, 2 days before this result."
    assert k.get_by_test_id("change").inner_text() == "Change: -1.4 mmol/L (-31.8%), a fall."
    verdict = k.get_by_test_id("delta-verdict").inner_text()
    assert "Significant change" in verdict and "Beyond the delta-check limit of 1 mmol/L within 48 hours." in verdict
    # What a screen reader is given for the picture: Chromium's own accessibility tree.
    [svg] = accessibility_nodes(page, "#result-potassium svg[data-testid=trend]")
    assert svg["role"] in ("image", "img") and not svg["ignored"], svg
    assert svg["name"] == "Potassium trend: 4.4 mmol/L on 2026-11-19 to 3 mmol/L on 2026-11-21"
    assert "2026-11-19: 4.4 mmol/L; 2026-11-21: 3 mmol/L (this result)" in svg["description"]
    assert k.get_by_test_id("trend-points").inner_text().split("\n") == [
        "2026-11-19: 4.4 mmol/L", "2026-11-21: 3 mmol/L (this result)"]  # the same values, as text
    box = k.get_by_test_id("trend").bounding_box()
    assert box is not None and (round(box["width"]), round(box["height"])) == (160, 40)
    dot, square = k.locator("[data-testid=trend] circle.point"), k.locator("[data-testid=trend] .point.current")
    a, b = dot.bounding_box(), square.bounding_box()
    assert a and b and a["x"] < b["x"] and a["y"] < b["y"]  # later to the right; it fell, so lower
    assert page.locator("script").count() == 0
    # In print: the results only, the picture drawn in black.
    page.emulate_media(media="print")
    assert k.get_by_test_id("trend").is_visible() and not page.locator("#panel-form").is_visible()
    stroke = page.evaluate("""() => getComputedStyle(
        document.querySelector('#result-potassium [data-testid=trend] polyline')).stroke""")
    assert stroke == "rgb(0, 0, 0)"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "results-with-earlier-value-print.png"), full_page=True)


def test_an_earlier_value_after_the_collection_date_is_refused_on_its_field(page, base_url):
    submit_with_earlier_values(page, base_url, earlier={"potassium": ("4.4", "2026-11-22")})
    assert page.title().startswith("Correct the form")
    day = page.get_by_label("Potassium earlier value taken on", exact=True)
    assert day.input_value() == "2026-11-22" and day.get_attribute("aria-invalid") == "true"
    [node] = accessibility_nodes(page, "#potassium_previous_on")
    assert "before the collection date" in node["description"]  # the error is the field's description
    assert earlier_value_box(page, "potassium").input_value() == "4.4"
    summary = page.locator("#error-summary a")
    assert summary.count() == 1 and summary.first.get_attribute("href") == "#potassium_previous_on"
    assert summary.first.inner_text() == "Potassium earlier value taken on"


LABEL_TEXTS = """() => Object.fromEntries([...document.querySelectorAll('label[for]')]
    .map(l => [l.htmlFor, l.innerText.replace(/\\s+/g, ' ').trim()]))"""


def test_every_control_has_a_name_of_its_own_that_holds_its_visible_label(page, base_url):
    """As Chromium's accessibility tree gives them (a screen reader's form list, voice control): no
    two controls share a name, each analyte's value and unit are named with the analyte, and each name
    is its visible label, whole (WCAG 2.5.3 Label in Name, 2.4.6 Headings and Labels, 4.1.2)."""
    page.goto(base_url + "/")
    controls = accessibility_nodes(page, "#panel-form input, #panel-form select, #panel-form button")
    visible = page.evaluate(LABEL_TEXTS)
    assert len(controls) > 40 and all(not c["ignored"] and c["name"] for c in controls), controls
    names = {c["attributes"]["id"]: c["name"] for c in controls if "id" in c["attributes"]}
    assert sorted(n for n in names.values() if list(names.values()).count(n) > 1) == []
    assert {i: n for i, n in names.items() if n != visible.get(i)} == {}  # the name is the visible label
    for analyte in (f.analyte for f in analyte_fields(KB)):
        optional = " (optional)" if analyte in KB.adjusting else ""
        assert names[f"{analyte}_value"] == f"{KB.analytes[analyte].name} value{optional}"
        assert names[f"{analyte}_unit"] == f"{KB.analytes[analyte].name} unit"
    assert "Vitamin B12 (cobalamin) value" in names.values()
    roles = {c["attributes"]["id"]: c["role"] for c in controls if "id" in c["attributes"]}
    assert roles["potassium_value"] == "textbox" and roles["potassium_unit"] == "combobox"
    assert [c["name"] for c in controls if c["role"] == "button"] == ["Interpret"]
    # The error summary names a field as its label does (a hint such as "(optional)" may follow).
    summary = {k: v for k, v in field_labels(KB).items() if k in names}
    assert set(summary) == {i for i in names if "-" not in i}  # all but the list choices (named by their group)
    assert {k: names[k] for k, v in summary.items() if not names[k].startswith(v)} == {}


def test_every_choice_has_a_name_and_grouped_checkboxes_sit_under_a_legend(page, base_url):
    page.goto(base_url + "/")
    options = accessibility_nodes(page, "#panel-form option")
    assert len(options) > 20 and [o for o in options if o["role"] != "option" or not o["name"].strip()] == []
    for select in ("sex", "diet"):  # the vocabulary's words, never its ids
        names = [o["name"] for o in accessibility_nodes(page, f"#{select} option")]
        assert names == ["not stated", *(t.label for t in KB.vocabulary.terms[select])]
    groups = {g["attributes"].get("id"): g for g in accessibility_nodes(page, "#panel-form fieldset")}
    labels = field_labels(KB)
    for group in LIST_FIELDS:
        assert groups[group]["role"] == "group" and groups[group]["name"] == labels[group]  # the legend
        boxes = accessibility_nodes(page, f"fieldset#{group} > .checks > input[type=checkbox]")
        assert [b["attributes"]["value"] for b in boxes] == [t.id for t in KB.vocabulary.terms[group]]
        assert [b["name"].startswith(t.label) for b, t in zip(boxes, KB.vocabulary.terms[group])] == [True] * len(boxes)
        assert all(b["role"] == "checkbox" for b in boxes)
    grouped = page.evaluate("""() => [...document.querySelectorAll('input[type=checkbox]')].map(b => {
        const f = b.closest('fieldset'), legend = f && f.querySelector(':scope > legend');
        return legend ? legend.innerText.trim() : null; })""")
    assert None not in grouped and set(grouped) == {"Clinical context", *(labels[g] for g in LIST_FIELDS)}


def test_seed_documents_are_cited_by_title_never_by_file_name(page, base_url):
    """The knowledge cites some sources by a seed file (001_eb066d96f24a82f2.txt): the page shows their
    titles, and the file name is in no visible text and nowhere in the accessibility tree."""
    submit_acceptance_panel(page, base_url)
    seeds = page.locator("cite[data-reference]")
    references = [seeds.nth(i).get_attribute("data-reference") for i in range(seeds.count())]
    assert references and all(SEED_FILE.fullmatch(r) for r in references)  # seed citations are on this page
    titles = [seeds.nth(i).inner_text() for i in range(seeds.count())]
    assert all(t.strip() and not SEED_FILE.search(t) for t in titles)
    assert "Can vitamin B12 cause leg cramps? (consumer article)" in titles
    text = page.locator("body").inner_text()
    assert SEED_FILE.findall(text) == [] and ".txt" not in text
    assert [n for n in all_accessible_names(page) if SEED_FILE.search(n) or ".txt" in n] == []


def test_keyboard_alone_fills_and_submits_the_form(page, base_url):
    page.goto(base_url + "/")
    typed = {"potassium_value": "3.1", "calcium_value": "8.1"}
    reached: list[str] = []
    for _ in range(120):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const e = document.activeElement;
            const s = getComputedStyle(e);
            return {id: e.id, tag: e.tagName, outline: s.outlineStyle + ' ' + s.outlineWidth}; }""")
        assert not focused["outline"].startswith("none"), focused  # focus is always visible
        reached.append(focused["id"] or focused["tag"])
        if focused["id"] in typed:
            page.keyboard.type(typed[focused["id"]])
        if focused["id"] == "medications-diuretic":
            page.keyboard.press("Space")
        if focused["tag"] == "BUTTON":
            break
    assert reached[-1] == "BUTTON" and {"potassium_value", "calcium_value", "sex", "age"} <= set(reached)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("#result-potassium [data-testid=band]").inner_text() == "low (L)"
    assert page.locator("#result-calcium [data-testid=band]").inner_text() == "low (L)"
    assert page.locator("#medications-diuretic").is_checked()  # the form below keeps what was chosen


CONTRAST = """() => {
  const lum = c => { const [r, g, b] = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(v => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  const opaque = c => { const m = c.match(/[\\d.]+/g); return m && (m.length < 4 || Number(m[3]) === 1); };
  const background = e => { for (; e; e = e.parentElement) { const c = getComputedStyle(e).backgroundColor;
      if (opaque(c)) return c; } return 'rgb(255, 255, 255)'; };
  const out = [];
  for (const e of document.body.querySelectorAll('*')) {
    if (e.closest('svg') && e.tagName !== 'text') continue;
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !e.getClientRects().length) continue;
    const s = getComputedStyle(e);
    const fg = e.tagName === 'text' ? s.fill : s.color;
    const bg = e.tagName === 'text' ? 'rgb(255, 255, 255)' : background(e);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
    const large = size >= 24 || (bold && size >= 18.66);
    out.push({text: e.textContent.trim().slice(0, 40), ratio: (a + 0.05) / (b + 0.05), need: large ? 3 : 4.5});
  }
  return out;
}"""


def test_text_contrast_meets_wcag_aa_on_every_page(page, base_url):
    submit_acceptance_panel(page, base_url)
    pages = [page.evaluate(CONTRAST)]
    page.goto(base_url + "/")
    pages.append(page.evaluate(CONTRAST))
    value_box(page, "potassium").fill("abc")
    with page.expect_navigation():
        page.get_by_role("button", name="Interpret").click()
    pages.append(page.evaluate(CONTRAST))
    checked = [item for found in pages for item in found]
    assert len(checked) > 100
    assert [c for c in checked if c["ratio"] < c["need"]] == []


def test_the_results_print_on_one_page(page, base_url):
    submit_acceptance_panel(page, base_url)
    pdf = page.pdf(format="A4", print_background=True)
    pages = len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf))
    (SCREENSHOTS).mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "results-acceptance-panel.pdf").write_bytes(pdf)
    assert pages == 1


def test_nothing_is_loaded_from_elsewhere(page, base_url):
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    submit_acceptance_panel(page, base_url)
    assert requested and all(u.startswith(base_url) for u in requested), requested
    assert base_url + "/favicon.ico" not in requested
    assert page.locator("link[rel=stylesheet]").count() == 1 and page.locator("script").count() == 0
