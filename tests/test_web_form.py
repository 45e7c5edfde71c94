"""The clinician form through the test client: its fields, its markup rules, and that it runs the
same parse and core as the JSON API (never a second copy of a rule)."""
from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder

from service.app import service_of
from service.config import Settings
from service.core import load_knowledge

from .conftest import make_app
from .core_helpers import RANGES, load_yaml

_KB = load_knowledge(RANGES)
_VOCAB = _KB.vocabulary
SEXES, DIETS, MEDICATIONS, SYMPTOMS, CONDITIONS = (
    _VOCAB.ids(k) for k in ("sex", "diet", "medications", "symptoms", "conditions"))
FORM_ANALYTES = list(_KB.analytes)  # every analyte of the knowledge, in its order


class Page(HTMLParser):
    """Just enough of the DOM for these checks: elements with attributes, labels, legends, text by id."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.text_by_id: dict[str, str] = {}
        self.label_text: dict[str, str] = {}  # a label's text, by the control it is for
        self.fieldsets_without_legend = 0
        self._fieldset_first_child: list[bool] = []  # True while a fieldset awaits its first child
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if self._fieldset_first_child and self._fieldset_first_child[-1]:
            self._fieldset_first_child[-1] = False
            self.fieldsets_without_legend += tag != "legend"
        self.elements.append((tag, a))
        if tag == "fieldset":
            self._fieldset_first_child.append(True)
        if tag not in ("input", "meta", "link", "br", "img", "line", "rect", "polygon", "circle", "polyline"):
            self.stack.append((tag, a))

    def handle_endtag(self, tag):
        if tag == "fieldset" and self._fieldset_first_child:
            self._fieldset_first_child.pop()
        if all(t != tag for t, _ in self.stack):
            return  # the end of an element never pushed (an SVG shape's </rect>): nothing to close
        while self.stack and self.stack[-1][0] != tag:
            self.stack.pop()
        if self.stack:
            self.stack.pop()

    def handle_data(self, data):
        for tag, a in self.stack:
            if "id" in a:
                self.text_by_id[a["id"]] = self.text_by_id.get(a["id"], "") + data
            if tag == "label" and "for" in a:
                self.label_text[a["for"]] = self.label_text.get(a["for"], "") + data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def options(self, select_id: str) -> tuple[list[str], str | None]:
        values, selected, inside = [], None, False
        for tag, a in self.elements:
            if tag == "select":
                inside = a.get("id") == select_id
            elif tag == "option" and inside:
                values.append(a["value"])
                if "selected" in a:
                    selected = a["value"]
        return values, selected


@pytest.fixture(scope="module")
def form_page(app) -> Page:
    resp = app.test_client().get("/")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    return Page(resp.get_data(as_text=True))


def test_each_analyte_lists_exactly_its_accepted_units_with_the_canonical_one_chosen(form_page):
    for analyte in FORM_ANALYTES:
        data = load_yaml(f"{analyte}.yaml")
        values, selected = form_page.options(f"{analyte}_unit")
        assert values == data["units"] and selected == data["canonical_unit"], analyte
        assert form_page.find("input", id=f"{analyte}_value", name=f"{analyte}_value")


def test_the_context_uses_the_api_vocabularies(form_page):
    assert form_page.options("sex")[0] == ["", *SEXES]
    assert form_page.options("diet")[0] == ["", *DIETS]
    for group, words in (("medications", MEDICATIONS), ("symptoms", SYMPTOMS), ("conditions", CONDITIONS)):
        assert [a["value"] for a in form_page.find("input", name=group)] == list(words)
    for name in ("age", "collected_on", "b12_injection_on", "b12_therapy_started_on", "hemolyzed"):
        assert form_page.find("input", name=name), name


def test_every_control_is_labelled_and_every_fieldset_has_a_legend(form_page):
    labelled = {a["for"] for a in form_page.find("label")}
    controls = [a for t, a in form_page.elements if t in ("input", "select", "textarea")]
    assert len(controls) > 30
    assert [c["id"] for c in controls if c.get("id") not in labelled] == []
    assert form_page.find("fieldset") and form_page.fieldsets_without_legend == 0
    assert form_page.find("html", lang="en")


def test_each_label_is_a_name_of_its_own_and_names_its_analyte(form_page, app):
    """Five "Value" boxes and five "Unit" lists could not be told apart by voice control or in a screen
    reader's form list; the labels name the analyte, and no label is hidden behind an aria-label."""
    kb = service_of(app).knowledge
    text = {k: " ".join(v.split()) for k, v in form_page.label_text.items()}
    for analyte in FORM_ANALYTES:
        name = kb.analytes[analyte].name
        assert text[f"{analyte}_value"] in (f"{name} value", f"{name} value (optional)"), text[f"{analyte}_value"]
        assert text[f"{analyte}_unit"] == f"{name} unit"
    assert text["vitamin_b12_value"] == "Vitamin B12 (cobalamin) value"
    assert len(text) > 40 and len(set(text.values())) == len(text)  # no two labels alike
    controls = [a for t, a in form_page.elements if t in ("input", "select", "textarea", "button")]
    assert [c for c in controls if "aria-label" in c or "aria-labelledby" in c] == []  # the label is the name


def test_nothing_comes_from_elsewhere_and_nothing_inline_that_the_csp_would_block(client):
    resp = client.get("/")
    html = resp.get_data(as_text=True)
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    page = Page(html)
    assert not page.find("script") and not page.find("style") and " style=" not in html
    refs = [a.get("href") or a.get("src") for t, a in page.elements if t in ("link", "img", "script")]
    assert refs == ["/assets/labinterp.css", "/assets/favicon.svg"]
    with client.get("/assets/labinterp.css") as css:
        assert css.status_code == 200 and css.mimetype == "text/css"
        assert not re.search(r"url\(|@import|https?:", css.get_data(as_text=True))


def form_data(values: dict[str, tuple[str, str]], **extra: str) -> dict[str, str]:
    data = {}
    for analyte, (value, unit) in values.items():
        data[f"{analyte}_value"], data[f"{analyte}_unit"] = value, unit
    return {**data, **extra}


def test_invalid_input_keeps_the_values_and_ties_each_error_to_its_field(client):
    resp = client.post("/", data=form_data({"potassium": ("abc", "mmol/L"), "calcium": ("9", "mg/dL")},
                                           age="200", b12_injection_on="yesterday", sex="robot"))
    assert resp.status_code == 422 and resp.headers["Content-Security-Policy"]
    page = Page(resp.get_data(as_text=True))
    bad = {a["id"]: a for t, a in page.elements if a.get("aria-invalid") == "true"}
    assert set(bad) == {"potassium_value", "age", "b12_injection_on", "sex"}
    for field, control in bad.items():
        message_id = control["aria-describedby"]
        assert message_id == f"{field}-error" and page.text_by_id[message_id].strip().startswith("Error:")
    assert "YYYY-MM-DD" in page.text_by_id["b12_injection_on-error"]
    assert page.find("input", id="potassium_value", value="abc") and page.find("input", id="age", value="200")
    assert page.find("input", id="calcium_value", value="9")


def test_an_empty_form_asks_for_a_result_and_unknown_fields_are_named(client):
    page = Page(client.post("/", data={"sneaky": "1"}).get_data(as_text=True))
    assert "enter at least one result" in page.text_by_id["form-error"]
    assert "sneaky" in page.text_by_id["form-error"]


def test_the_form_is_off_when_configured_so():
    app = make_app(form=False)
    assert app.test_client().get("/").status_code == 404
    assert Settings.from_env({"LABINTERP_FORM": "off"}).form is False
    with pytest.raises(ValueError, match="LABINTERP_FORM"):
        Settings.from_env({"LABINTERP_FORM": "maybe"})


def test_the_form_endpoints_are_the_only_routes_outside_the_contract(app):
    web = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("web.")}
    assert web == {"web.form", "web.interpret", "web.static"}


# ----------------------------------------------------------- same core as the API, for any panel

UNITS = {a: load_yaml(f"{a}.yaml")["units"] for a in FORM_ANALYTES}
value_text = st.one_of(
    st.floats(min_value=0, max_value=30000, allow_nan=False).map(lambda x: f"{x:.4g}"),
    st.sampled_from(["<50", ">2000", "<= 1.2", "0", "-3", "abc", "1e3", "nan", "3,1", " 4.0 "]),
)
panels = st.dictionaries(st.sampled_from(FORM_ANALYTES), st.tuples(value_text, st.integers(0, 3)), max_size=5)


def _bands_and_notes(html: str) -> tuple[list[tuple[str, str]], list[str]]:
    bands = re.findall(r'<article class="result [^"]*" id="result-([a-z_0-9]+)" data-band="([a-z_]+)"', html)
    return bands, re.findall(r'data-note-id="([a-z0-9-]+)"', html)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(panel=panels, age=st.sampled_from(["", "45", "70"]), injection=st.sampled_from(["", "2026-11-19"]),
       meds=st.lists(st.sampled_from(MEDICATIONS), unique=True, max_size=2))
def test_the_form_and_the_api_give_the_same_interpretation(client, panel, age, injection, meds):
    # The form sends its analytes in page order; so does the JSON body here.
    values = {a: (panel[a][0], UNITS[a][panel[a][1] % len(UNITS[a])]) for a in FORM_ANALYTES if a in panel}
    extra = {"collected_on": "2026-11-21", **({"age": age} if age else {}),
             **({"b12_injection_on": injection} if injection else {})}
    resp = client.post("/", data={**form_data(values, **extra), "medications": meds})
    body = {"results": [{"id": a, "analyte": a, "value": v, "unit": u} for a, (v, u) in values.items()],
            "collected_at": "2026-11-21T00:00:00+00:00",
            **({"patient": {"age_years": float(age)}} if age else {}),
            "context": {"medications": meds, **({"b12_injection_at": injection + "T00:00:00+00:00"}
                                                if injection else {})}}
    api = client.post("/v1/interpretations", json=body)
    assert resp.status_code in (200, 422) and api.status_code in (200, 422)
    assert (resp.status_code == 200) == (api.status_code == 200 and bool(values))
    if api.status_code == 200:
        report = api.get_json()
        bands, notes = _bands_and_notes(resp.get_data(as_text=True))
        assert bands == [(r["id"], r["band"]) for r in report["results"]]
        assert notes == [n["id"] for r in report["results"] for n in r["notes"]] + [n["id"] for n in report["notes"]]
    elif values:
        problems = {p["pointer"].split("/")[2] for p in api.get_json()["errors"] if p["pointer"].startswith("/results/")}
        html = resp.get_data(as_text=True)
        for index in problems:
            assert f'id="{list(values)[int(index)]}_value-error"' in html or \
                   f'id="{list(values)[int(index)]}_unit-error"' in html


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["potassium_value", "potassium_unit", "age", "sex", "diet", "hemolyzed",
                                        "collected_on", "b12_injection_on", "medications", "x\u0000y",
                                        "potassium_previous_value", "potassium_previous_on"]),
                       st.text(max_size=300), max_size=6))
def test_any_form_post_is_answered_with_a_page_never_a_crash(client, data):
    resp = client.post("/", data=data)
    assert resp.status_code in (200, 422) and resp.mimetype == "text/html"


def test_an_oversized_form_is_refused_unread(client, app):
    limit = service_of(app).settings.max_body_bytes
    resp = client.post("/", data={"potassium_value": "1" * (limit + 10)})
    assert resp.status_code == 413 and resp.mimetype == "text/html"
    page = Page(resp.get_data(as_text=True))
    assert f"larger than {limit} bytes" in page.text_by_id["form-error"]  # the form again, saying why


def _chunked_form(app, body: bytes) -> tuple[int, str, str, int]:
    """POST / as gunicorn passes a chunked upload: no Content-Length, wsgi.input_terminated set."""
    stream = io.BytesIO(body)
    env = EnvironBuilder(path="/", method="POST", content_type="application/x-www-form-urlencoded").get_environ()
    env.pop("CONTENT_LENGTH", None)
    env.update({"wsgi.input": stream, "wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked",
                "REMOTE_ADDR": "127.0.0.1"})  # the form answers this host without a key
    out: dict = {}

    def start_response(status, headers, exc_info=None):
        out["status"], out["type"], out["read"] = int(status.split()[0]), dict(headers)["Content-Type"], stream.tell()

    iterable = app(env, start_response)
    try:
        html = b"".join(iterable).decode()
    finally:
        iterable.close()
    return out["status"], out["type"], html, out["read"]


@pytest.mark.parametrize("extra, status", [(0, 422), (1, 413), (20 * 1024 * 1024, 413)],
                         ids=["at-limit", "one-byte-over", "over-the-app-wide-cap"])
def test_a_chunked_form_is_held_to_the_same_limit(app, extra, status):
    """Without a Content-Length the form is read to one byte past its limit: over it is a 413 page,
    never a form cut short at some cap and interpreted as if it were whole (Werkzeug truncates a
    chunked body at max_content_length instead of refusing it)."""
    limit = service_of(app).settings.max_body_bytes
    fields = b"potassium_value=3.1&potassium_unit=mmol%2FL&age="
    body = fields + b"4" * (limit - len(fields)) + b"0" * extra  # an age of ~a million digits
    got, media_type, html, read = _chunked_form(app, body)
    assert (got, media_type.split(";")[0]) == (status, "text/html"), html[:300]
    assert read <= limit + 1 + 65536
    page = Page(html)
    if got == 413:
        assert f"larger than {limit} bytes" in page.text_by_id["form-error"]
    else:  # read whole and parsed: the age is the one field refused
        assert "age-error" in page.text_by_id and "form-error" not in page.text_by_id, page.text_by_id
