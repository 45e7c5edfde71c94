"""gunicorn's logger for the production configuration: its own messages as JSON lines, like the
service's, and no access log, because the service writes one JSON line per request itself (with
the route template, the request id and the result count, which gunicorn cannot know)."""
from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from .logs import JsonFormatter


class JsonGunicornLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Nothing: gunicorn would otherwise build its access-log atoms for every request."""
