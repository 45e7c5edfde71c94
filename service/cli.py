"""`labinterp interpret FILE`: panels from a file (or -) to JSON lines on stdout, on the same core.

FILE holds one panel (a JSON object with `results`), a batch (`{"panels": [...]}`), an array of
panels, or one panel per line (newline-delimited JSON). Each panel gives one output line, in order: {"index", "status": 200,
"report"} or {"index", "status": 422, "problem"}. Exit status: 0 when every panel was interpreted,
1 when some were not (their lines say why), 2 when the input could not be read at all.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any, Iterable

from .api.interpretations.batch import Interpreter
from .api.interpretations.schemas import make_schemas
from .config import Settings
from .core import KnowledgeError, load_knowledge


class InputUnreadable(Exception):
    pass


def _panels(text: str) -> list[Any]:
    """The panels of one JSON document (a panel, a batch, or an array of panels) or of JSON lines."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    else:
        if isinstance(doc, dict):
            return doc["panels"] if isinstance(doc.get("panels"), list) else [doc]
        if isinstance(doc, list):
            return doc
        raise InputUnreadable("expected a panel, {\"panels\": [...]}, an array of panels, or JSON lines")
    panels = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                panels.append(json.loads(line))
            except ValueError as exc:
                raise InputUnreadable(f"line {n} is not JSON: {exc}") from None
    return panels


def _progress(items: list[Any]) -> Iterable[Any]:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return items
    from tqdm import tqdm

    return tqdm(items, unit=" panels", file=sys.stderr)


def interpret_command(path: str, out: IO[str]) -> int:
    settings = Settings.from_env()
    kb = load_knowledge(settings.ranges_dir)
    schemas = make_schemas(kb, settings.max_results, settings.max_string_length)
    interpreter = Interpreter(kb, schemas["Panel"](), schemas["ResultInput"](), settings.max_results)
    failed = 0
    if path == "-":
        text = sys.stdin.read()
    else:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    for index, panel in enumerate(_progress(_panels(text))):
        line = interpreter.one(index, panel)
        failed += line["status"] != 200
        out.write(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labinterp", description="Interpret lab panels without a server.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("interpret", help="interpret panels from FILE (or -) and write JSON lines to stdout")
    cmd.add_argument("file", help="a JSON panel, a {\"panels\": [...]} batch, or JSON lines; - for stdin")
    args = parser.parse_args(argv)
    try:
        return interpret_command(args.file, sys.stdout)
    except (OSError, UnicodeDecodeError, InputUnreadable) as exc:
        print(f"labinterp: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    except KnowledgeError as exc:
        print(f"labinterp: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
