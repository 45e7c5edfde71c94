"""Input problems, located by a path into the input, so that every front door can name the field."""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: where (a path of keys and indexes) and what."""

    path: Path
    message: str

    def pointer(self) -> str:
        """The path as an RFC 6901 JSON pointer."""
        return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in self.path)


def flatten_messages(messages: object, path: Path = ()) -> list[Problem]:
    """marshmallow's nested error messages as a flat list of located problems."""
    out: list[Problem] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            out.extend(flatten_messages(value, path if key == "_schema" else path + (key,)))
    elif isinstance(messages, list):
        for item in messages:
            out.extend(flatten_messages(item, path))
    else:
        out.append(Problem(path, str(messages)))
    return out


class InputError(ValueError):
    """The input cannot be interpreted; carries every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(f"{p.pointer() or '/'}: {p.message}" for p in self.problems))


class KnowledgeError(RuntimeError):
    """A knowledge file is invalid; the message names the file and the field."""

    def __init__(self, file: str, field: str, message: str):
        self.file, self.field = file, field
        super().__init__(f"{file}: {field}: {message}")
