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
    max_history: int = 100


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
    _loaders: dict[str, Schema] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lim = self.limits
        schemas = make_schemas(self.kb, lim.max_results, lim.max_string_length, lim.max_history)
        object.__setattr__(self, "schemas", schemas)
        object.__setattr__(self, "_loaders", {name: schema() for name, schema in schemas.items()})

    def interpret(self, body: Any) -> Outcome:
        """A JSON panel (already parsed from its bytes) to its report or its problems."""
        try:
            return Outcome(report=self.run(self.read(body)))
        except InputError as exc:
            return Outcome(problems=exc.problems)

    def read(self, body: Any) -> PanelInput:
        """The core's input for a JSON panel; InputError with every problem, located, otherwise."""
        return parse_panel(body, self._loaders, self.kb,
                           {"results": self.limits.max_results, "history": self.limits.max_history})

    def run(self, panel: PanelInput) -> PanelReport:
        """The core on a panel a door has built itself; raises InputError as the core does."""
        report = interpret_panel(panel, self.kb)
        metrics.observe_reports((report,))
        return report
