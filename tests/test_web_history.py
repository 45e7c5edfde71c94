"""The form's earlier value per analyte (issue 15) through the test client: the fields and their
labels, the history they send, the change and the trend picture on the results page, and each
problem on the field it came from."""
from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core import load_knowledge
from service.panels import Panels
from service.web import trend
from service.web.form import analyte_fields, field_labels, to_panel_json

from .core_helpers import RANGES
from .test_web_form import Page

KB = load_knowledge(RANGES)
NAMES = {a: KB.analytes[a].name for a in KB.analytes}

# Potassium 4.4 two days before 3.0 mmol/L: a fall of 1.4, beyond the 1 mmol/L-in-48-hours limit.
EARLIER_K = {"potassium_value": "3.0", "potassium_unit": "mmol/L", "potassium_previous_value": "4.4",
             "potassium_previous_on": "2026-11-19", "collected_on": "2026-11-21"}


def words(html: str) -> str:
    """The text of an HTML fragment, tags dropped and white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split()).replace("&lt;", "<").replace("&gt;", ">")


def by_testid(html: str, testid: str, tag: str = "p") -> list[str]:
    return [words(m) for m in re.findall(rf'<{tag}[^>]*data-testid="{testid}"[^>]*>(.*?)</{tag}>', html, re.S)]


def result_html(html: str, rid: str) -> str:
    m = re.search(rf'<article [^>]*id="result-{rid}".*?</article>', html, re.S)
    assert m, f"no result {rid}"
    return m.group(0)


def post(client, **data: str):
    return client.post("/", data=data)


# ------------------------------------------------------------------------------------ the fields


def test_each_analyte_has_an_earlier_value_and_its_day_named_with_the_analyte(client):
    page = Page(client.get("/").get_data(as_text=True))
    text = {k: " ".join(v.split()) for k, v in page.label_text.items()}
    labels = field_labels(KB)
    for f in analyte_fields(KB):
        name = NAMES[f.analyte]
        assert page.find("input", id=f.previous_value_name, name=f.previous_value_name, type="text")
        assert page.find("input", id=f.previous_on_name, name=f.previous_on_name, type="date")
        assert labels[f.previous_value_name] == f"{name} earlier value"
        assert labels[f.previous_on_name] == f"{name} earlier value taken on"
        # The label says the unit is the current value's; the hint follows the name, as "(optional)" does.
        assert text[f.previous_value_name] == f"{name} earlier value (optional, same unit)"
        assert text[f.previous_on_name] == f"{name} earlier value taken on"
    assert text["potassium_previous_value"] == "Potassium earlier value (optional, same unit)"
    assert "in the unit chosen for that result" in page.text_by_id["earlier-hint"]
    assert "needed with an earlier value" in text["collected_on"]


def test_the_earlier_value_is_sent_as_history_in_the_current_values_unit_at_the_start_of_its_day():
    form = {"calcium_value": "9.1", "calcium_unit": "mg/dL", "calcium_previous_value": " 10.4 ",
            "calcium_previous_on": "2026-11-20", "collected_on": "2026-11-21"}
    parsed = to_panel_json(form, {}, KB)
    assert parsed.own_errors == {}
    # The same rule as every other date of the form: the day means 00:00 UTC.
    assert parsed.body["collected_at"] == "2026-11-21T00:00:00+00:00"
    assert parsed.body["history"] == [{"analyte": "calcium", "value": "10.4", "unit": "mg/dL",
                                       "collected_at": "2026-11-20T00:00:00+00:00"}]
    assert parsed.history_sources == ("calcium",)
    assert "history" not in to_panel_json({"calcium_value": "9.1"}, {}, KB).body


# ----------------------------------------------------------------------- the change and the trend


def test_an_earlier_potassium_value_shows_the_change_and_a_trend_naming_both_values(client):
    resp = post(client, **EARLIER_K)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:2000]
    html = resp.get_data(as_text=True)
    k = result_html(html, "potassium")
    assert by_testid(k, "previous") == ["Earlier value: 4.4 mmol/L on 2026-11-19, 2 days before this result."]
    assert by_testid(k, "change") == ["Change: -1.4 mmol/L (-31.8%), a fall."]
    verdict = by_testid(k, "delta-verdict")[0]
    assert verdict.startswith("Significant change Beyond the delta-check limit of 1 mmol/L within 48 hours.")
    assert 'data-significant="true"' in k
    assert "labinterp delta-check proposal" in verdict  # the limit's source, by title
    svgs = re.findall(r'<svg [^>]*data-testid="trend".*?</svg>', k, re.S)
    assert len(svgs) == 1
    svg = svgs[0]
    assert 'role="img"' in svg and 'aria-labelledby="trend-potassium-title"' in svg
    assert 'aria-describedby="trend-potassium-desc"' in svg
    title = words(re.search(r'<title id="trend-potassium-title">(.*?)</title>', svg, re.S).group(1))
    desc = words(re.search(r'<desc id="trend-potassium-desc">(.*?)</desc>', svg, re.S).group(1))
    assert title == "Potassium trend: 4.4 mmol/L on 2026-11-19 to 3 mmol/L on 2026-11-21"
    assert "2026-11-19: 4.4 mmol/L; 2026-11-21: 3 mmol/L (this result)" in desc
    # The same values in text beside the picture.
    assert by_testid(k, "trend-points", "ol") == ["2026-11-19: 4.4 mmol/L 2026-11-21: 3 mmol/L (this result)"]
    # Drawn in black by presentation attributes: nothing the CSP would block, nothing told by colour alone.
    assert " style=" not in html and "<script" not in html
    assert re.search(r'<polyline points="[\d.]+,[\d.]+ [\d.]+,[\d.]+" fill="none" stroke="#000000"', svg)
    assert svg.count("<circle") == 1 and svg.count('class="point current"') == 1  # the earlier dot, this square
    assert 'width="160" height="40"' in svg
    # The core's temporal note is there as well.
    assert 'data-note-id="delta-significant-change"' in k


def test_the_page_says_what_the_api_reports(client):
    """The words come from the report's delta: the same panel through the JSON API gives the same numbers."""
    html = post(client, **EARLIER_K).get_data(as_text=True)
    body = to_panel_json(EARLIER_K, {}, KB).body
    delta = client.post("/v1/interpretations", json=body).get_json()["results"][0]["delta"]
    assert delta["change"] == -1.4 and delta["significant"] is True and delta["rule"] == "potassium-delta-48h"
    assert f"{delta['change']:+g} mmol/L ({delta['change_percent']:+.1f}%)" in by_testid(html, "change")[0]


def test_a_change_within_the_limit_and_a_censored_value_are_said_in_words(client):
    html = post(client, magnesium_value="1.9", magnesium_unit="mg/dL", magnesium_previous_value="2.0",
                magnesium_previous_on="2026-11-20", vitamin_b12_value="<150", vitamin_b12_unit="pg/mL",
                vitamin_b12_previous_value="300", vitamin_b12_previous_on="2026-10-01",
                collected_on="2026-11-21").get_data(as_text=True)
    mg, b12 = result_html(html, "magnesium"), result_html(html, "vitamin_b12")
    assert by_testid(mg, "change") == ["Change: -0.1 mg/dL (-5.0%), a fall."]
    assert by_testid(mg, "delta-verdict")[0].startswith("Within the delta-check limit of 0.5 mg/dL and 20% within 48 hours.")
    assert 'data-significant="false"' in mg and "Significant change" not in mg
    assert by_testid(b12, "change") == ["Change: not computed."]
    assert by_testid(b12, "delta-verdict")[0] == "Not judged: a censored value has no number to subtract."
    desc = words(re.search(r"<desc [^>]*>(.*?)</desc>", b12, re.S).group(1))
    assert "2026-11-21: <150 pg/mL (this result) (censored)" in desc
    assert 'class="point current"' in b12  # the current result keeps its square, censored or not


def test_a_change_no_rule_covers_is_not_judged_and_an_earlier_value_past_the_look_back_is_not_compared(client):
    html = post(client, calcium_value="9", calcium_previous_value="9.2", calcium_previous_on="2026-11-01",
                potassium_value="4.0", potassium_previous_value="4.2", potassium_previous_on="2025-01-19",
                collected_on="2026-11-21").get_data(as_text=True)
    ca, k = result_html(html, "calcium"), result_html(html, "potassium")
    assert by_testid(ca, "delta-verdict") == ["Not judged: no delta-check limit applies to a change over 20 days."]
    assert by_testid(k, "not-compared") == [
        f"The earlier value was not compared: it was taken more than {KB.history.max_age_days:g} days before this result."]
    assert 'data-testid="trend"' not in k


def test_results_without_an_earlier_value_show_no_change_and_no_trend(client):
    html = post(client, potassium_value="3.0", collected_on="2026-11-21").get_data(as_text=True)
    assert 'data-testid="history"' not in html and 'data-testid="trend"' not in html
    assert 'data-testid="not-compared"' not in html


# ------------------------------------------------------------------------------- the trend's geometry


def _trend_of(values: list[tuple[str, float]], now: str = "2026-11-21T00:00:00+00:00", current: float = 3.0):
    body = {"collected_at": now, "results": [{"id": "k", "analyte": "potassium", "value": current, "unit": "mmol/L"}],
            "history": [{"analyte": "potassium", "value": v, "unit": "mmol/L", "collected_at": at} for at, v in values]}
    report = Panels(KB).interpret(body).report
    assert report is not None
    r = report.results[0]
    return r, trend.build(r.trend, r.canonical_unit, "Potassium")


def test_the_trend_runs_left_to_right_in_time_and_up_with_the_value():
    r, t = _trend_of([("2026-11-11T00:00:00+00:00", 4.0), ("2026-11-19T00:00:00+00:00", 4.6),
                      ("2026-11-20T00:00:00+00:00", 3.6)])
    assert t is not None and len(t.points) == len(r.trend) == 4
    xs, ys = [p.x for p in t.points], [p.y for p in t.points]
    assert xs[0] == trend.MARGIN and xs[-1] == trend.WIDTH - trend.MARGIN
    assert xs == sorted(xs) and abs((xs[1] - xs[0]) / (xs[-1] - xs[0]) - 0.8) < 0.01  # 8 of 10 days
    assert all(trend.MARGIN <= y <= trend.HEIGHT - trend.MARGIN for y in ys)
    assert ys[1] < ys[0] < ys[2] < ys[3]  # 4.6 highest, 3.0 lowest (SVG y grows downwards)
    assert t.low <= 3.0 and t.high >= 4.6
    assert t.description.startswith("4 results, oldest first. 2026-11-11: 4 mmol/L; 2026-11-19: 4.6 mmol/L; "
                                    "2026-11-20: 3.6 mmol/L; 2026-11-21: 3 mmol/L (this result).")
    assert [p.current for p in t.points] == [False, False, False, True]


def test_a_small_change_is_not_drawn_as_if_it_filled_the_picture():
    _, t = _trend_of([("2026-11-20T00:00:00+00:00", 4.0)], current=4.1)
    assert t is not None and t.high - t.low >= trend.MIN_SPAN * 4.1
    assert abs(t.points[0].y - t.points[1].y) < (trend.HEIGHT - 2 * trend.MARGIN) / 2
    _, flat = _trend_of([("2026-11-20T00:00:00+00:00", 4.0)], current=4.0)
    assert flat is not None and flat.points[0].y == flat.points[1].y
    assert trend.build(_trend_of([])[0].trend, "mmol/L", "Potassium") is None  # no history: no picture


def test_a_moment_that_is_not_a_whole_day_is_shown_with_its_time():
    assert trend.when(datetime.fromisoformat("2026-11-19T00:00:00+00:00")) == "2026-11-19"
    assert trend.when(datetime.fromisoformat("2026-11-19T09:30:00+01:00")) == "2026-11-19 08:30 UTC"


# --------------------------------------------------------------------------- problems on their fields


@pytest.mark.parametrize("data, field, says", [
    ({**EARLIER_K, "potassium_previous_on": "2026-11-22"}, "potassium_previous_on", "before the collection date"),
    ({**EARLIER_K, "potassium_previous_on": "2026-11-21"}, "potassium_previous_on", "before the collection date"),
    ({**EARLIER_K, "potassium_previous_on": ""}, "potassium_previous_on", "enter the day the earlier value was taken"),
    ({**EARLIER_K, "potassium_previous_value": ""}, "potassium_previous_value", "enter the earlier Potassium value"),
    ({**EARLIER_K, "collected_on": ""}, "collected_on", "needed to compare the results with their earlier values"),
    ({**EARLIER_K, "potassium_value": ""}, "potassium_previous_value", "enter the current Potassium value too"),
    ({**EARLIER_K, "potassium_previous_value": "abc"}, "potassium_previous_value", "is not a number"),
    ({**EARLIER_K, "potassium_previous_value": "-1"}, "potassium_previous_value", "is not a number"),
    ({**EARLIER_K, "potassium_previous_on": "last week"}, "potassium_previous_on", "enter a date as YYYY-MM-DD"),
], ids=["date-after-collection", "same-day-as-collection", "value-without-date", "date-without-value",
        "no-collection-date", "no-current-value", "not-a-number", "negative", "not-a-date"])
def test_each_problem_with_an_earlier_value_lands_on_its_field(client, data, field, says):
    resp = post(client, **data)
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    page = Page(html)
    bad = {a["id"]: a for t, a in page.elements if a.get("aria-invalid") == "true"}
    assert set(bad) == {field}, set(bad)
    assert bad[field]["aria-describedby"] == f"{field}-error"
    message = " ".join(page.text_by_id[f"{field}-error"].split())
    assert message.startswith("Error:") and says in message, message
    assert "collected_at" not in message and "history" not in message  # the form's words, not the API's
    summary = re.findall(r'<li><a href="#([a-z_0-9]+)">([^<]+)</a>', html)
    assert summary == [(field, field_labels(KB)[field])]
    for name, value in data.items():  # what was typed is kept
        if name.endswith("_value") or name.endswith("_on"):
            assert page.find("input", id=name, value=value), name


def test_an_earlier_value_with_a_bad_unit_is_one_message_on_the_unit(client):
    """The earlier value goes in the current value's unit: a unit the form never offers is refused once."""
    page = Page(post(client, **{**EARLIER_K, "potassium_unit": "furlong"}).get_data(as_text=True))
    bad = {a["id"] for t, a in page.elements if a.get("aria-invalid") == "true"}
    assert bad == {"potassium_unit"}
    assert page.text_by_id["potassium_unit-error"].count("unknown unit") == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(current=st.sampled_from(["", "3.0", ">7", "abc"]), earlier=st.sampled_from(["", "4.4", "<3", "abc", "0", "9999"]),
       day=st.sampled_from(["", "2026-11-19", "2026-11-21", "2026-11-25", "2024-01-01", "bad"]),
       collected=st.sampled_from(["", "2026-11-21"]))
def test_any_earlier_value_gives_a_page_whose_errors_sit_on_the_fields_typed(client, current, earlier, day, collected):
    data = {"potassium_value": current, "potassium_unit": "mmol/L", "potassium_previous_value": earlier,
            "potassium_previous_on": day, "collected_on": collected}
    resp = post(client, **data)
    html = resp.get_data(as_text=True)
    assert resp.status_code in (200, 422) and resp.mimetype == "text/html"
    parsed = to_panel_json(data, {}, KB)
    api = client.post("/v1/interpretations", json=parsed.body)
    if not parsed.own_errors:  # what the form sends, the API judges alike
        assert (resp.status_code == 200) == (api.status_code == 200)
    if resp.status_code == 422:
        bad = {a["id"] for t, a in Page(html).elements if a.get("aria-invalid") == "true"}
        assert bad <= {"potassium_value", "potassium_previous_value", "potassium_previous_on", "collected_on"}
        assert bad or (not current and 'id="form-error"' in html)  # nothing typed at all: "enter at least one result"
    elif earlier:
        k = result_html(html, "potassium")
        assert ('data-testid="history"' in k) != ('data-testid="not-compared"' in k)
