"""`Panels`: the JSON panel codec and the core, built once for one knowledge and one set of limits."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema

from ..core import InputError, PanelInput, Problem, interpret_panel
from ..core.knowledge import Knowledge
from ..core.report import PanelReport
from ..ops import metrics
from .parse import parse_panel
from .schemas import make_schemas


@dataclass(frozen=True)
class Limits:
    """What one panel may hold (service/config.py names the LABINTERP_* variable of each)."""

    max_results: int = 100
    max_string_length: int = 200


@dataclass(frozen=True)
class Outcome:
    """One panel's answer: its report, or every problem found in it (paths into the panel)."""

    report: PanelReport | None = None
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Panels:
    """The request schemas of this knowledge and these limits, and the one way a JSON panel is read."""

    kb: Knowledge
    limits: Limits = Limits()
    schemas: dict[str, type[Schema]] = field(init=False)
    _panel_schema: Schema = field(init=False, repr=False)
    _result_schema: Schema = field(init=False, repr=False)

    def __post_init__(self) -> None:
        schemas = make_schemas(self.kb, self.limits.max_results, self.limits.max_string_length)
        object.__setattr__(self, "schemas", schemas)
        object.__setattr__(self, "_panel_schema", schemas["Panel"]())
        object.__setattr__(self, "_result_schema", schemas["ResultInput"]())

    def interpret(self, body: Any) -> Outcome:
        """A JSON panel (already parsed from its bytes) to its report or its problems."""
        try:
            return Outcome(report=self.run(self.read(body)))
        except InputError as exc:
            return Outcome(problems=exc.problems)

    def read(self, body: Any) -> PanelInput:
        """The core's input for a JSON panel; InputError with every problem, located, otherwise."""
        return parse_panel(body, self._panel_schema, self._result_schema, self.kb, self.limits.max_results)

    def run(self, panel: PanelInput) -> PanelReport:
        """The core on a panel a door has built itself; raises InputError as the core does."""
        report = interpret_panel(panel, self.kb)
        metrics.observe_reports((report,))
        return report
