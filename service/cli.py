"""The `labinterp` command, on the same core as the service.

- `labinterp interpret FILE`: panels from a file (or -) to JSON lines on stdout. FILE holds one panel
  (a JSON object with `results`), a batch (`{"panels": [...]}`), an array of panels, or one panel per
  line (newline-delimited JSON). Each panel gives one output line, in order: {"index", "status": 200,
  "report"} or {"index", "status": 422, "problem"}. Exit status: 0 when every panel was interpreted,
  1 when some were not (their lines say why), 2 when the input could not be read at all.
- `labinterp diff-knowledge OLD_DIR NEW_DIR FILE`: what switching knowledge folders changes for the
  panels of FILE (read as `interpret` reads it); a summary on stdout, or JSON with --json.
- `labinterp synth-panels [--count N] [--seed S] [DIR ...]`: deterministic synthetic panels spanning
  every band and context term of the folders (default: the bundled one), as JSON lines.
- `labinterp rule-table [--write DOC]`: the table of note rules, for docs/clinical-safety.md.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import IO, Any
from collections.abc import Iterable

from .config import Settings
from .core import KnowledgeError, load_knowledge
from .core.knowledge import Knowledge
from .core.ruletable import replace_table, rule_table
from .panels import Panels, outcome_document
from .tools import knowledge_diff
from .tools.synthetic import synthetic_panels


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


def panels_for(kb: Knowledge, settings: Settings) -> Panels:
    return Panels(kb, settings.panel_limits())


def _read(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def interpret_command(path: str, out: IO[str]) -> int:
    settings = Settings.from_env()
    panels = panels_for(load_knowledge(settings.ranges_dir), settings)
    failed = 0
    for index, panel in enumerate(_progress(_panels(_read(path)))):
        line = outcome_document(index, panels.interpret(panel))
        failed += line["status"] != 200
        out.write(json.dumps(line, ensure_ascii=False, allow_nan=False) + "\n")
    return 1 if failed else 0


def diff_command(old_dir: str, new_dir: str, path: str, out: IO[str], as_json: bool, examples: int) -> int:
    settings = Settings.from_env()
    old_kb, new_kb = load_knowledge(old_dir), load_knowledge(new_dir)
    result = knowledge_diff.compare(_progress(_panels(_read(path))), panels_for(old_kb, settings),
                                    panels_for(new_kb, settings), old_kb, new_kb, examples)
    if as_json:
        out.write(json.dumps(knowledge_diff.as_json(result), indent=1) + "\n")
    else:
        out.write(knowledge_diff.summary(result) + "\n")
    return 0


def synth_command(dirs: list[str], count: int, seed: int, out: IO[str]) -> int:
    kbs = [load_knowledge(d) for d in dirs] or [load_knowledge(Settings.from_env().ranges_dir)]
    for panel in synthetic_panels(kbs, count, seed):
        out.write(json.dumps(panel, ensure_ascii=False) + "\n")
    return 0


def rule_table_command(write: str | None, out: IO[str]) -> int:
    table = rule_table(load_knowledge(Settings.from_env().ranges_dir))
    if write is None:
        out.write(table + "\n")
        return 0
    with open(write, encoding="utf-8") as f:
        document = f.read()
    with open(write, "w", encoding="utf-8") as f:
        f.write(replace_table(document, table))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labinterp", description="Interpret lab panels without a server.")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("interpret", help="interpret panels from FILE (or -) and write JSON lines to stdout")
    cmd.add_argument("file", help="a JSON panel, a {\"panels\": [...]} batch, or JSON lines; - for stdin")
    diff = sub.add_parser("diff-knowledge", help="what switching knowledge folders changes for the panels of FILE")
    diff.add_argument("old_dir")
    diff.add_argument("new_dir")
    diff.add_argument("file", help="panels as `interpret` reads them; - for stdin")
    diff.add_argument("--json", action="store_true", help="the whole diff as JSON")
    diff.add_argument("--examples", type=int, default=3, help="examples per analyte (default 3)")
    synth = sub.add_parser("synth-panels", help="deterministic synthetic panels as JSON lines")
    synth.add_argument("dirs", nargs="*", help="knowledge folders whose bands and terms to span (default: the bundled one)")
    synth.add_argument("--count", type=int, default=10_000)
    synth.add_argument("--seed", type=int, default=2026)
    table = sub.add_parser("rule-table", help="the note-rule table of docs/clinical-safety.md")
    table.add_argument("--write", metavar="DOC", help="replace the generated section of DOC instead of printing")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "diff-knowledge":
            return diff_command(args.old_dir, args.new_dir, args.file, sys.stdout, args.json, args.examples)
        if args.command == "synth-panels":
            return synth_command(args.dirs, args.count, args.seed, sys.stdout)
        if args.command == "rule-table":
            return rule_table_command(args.write, sys.stdout)
        return interpret_command(args.file, sys.stdout)
    except (OSError, UnicodeDecodeError, InputUnreadable) as exc:
        print(f"labinterp: cannot read {getattr(args, 'file', None) or getattr(args, 'write', '')}: {exc}", file=sys.stderr)
        return 2
    except KnowledgeError as exc:
        print(f"labinterp: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
