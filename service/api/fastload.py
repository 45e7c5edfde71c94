"""A compiled fast path for `Schema.load` of well-formed bodies; marshmallow stays the one rule book.

marshmallow's generic machinery (error stores, getters, per-field closures) costs about 100 µs for a
four-result panel, more than the interpretation itself. Most bodies are well-formed, so this module
compiles a schema once into plain functions that walk a body and call each leaf field's own
`_deserialize` and validators, exactly as `Field.deserialize` does. Nothing about what is valid is
restated here: structure (required, unknown keys, nesting, lists, defaults) follows marshmallow's
semantics, and every leaf rule is the field's own code. At the first doubt (any error, any
unexpected type) the walk gives up with `Fallback` and the caller runs `schema.load`, which then
produces the real messages. A property test holds the two to the same answers.
"""
from __future__ import annotations

import weakref
from typing import Any
from collections.abc import Callable

from marshmallow import RAISE, Schema, fields
from marshmallow.utils import missing

Loader = Callable[[Any], Any]


class Fallback(Exception):
    """The fast path cannot vouch for this body: run `schema.load`."""


class Unsupported(TypeError):
    """A schema feature this compiler does not mirror (raised when compiling, never per request)."""


_compiled: weakref.WeakKeyDictionary[Schema, Loader] = weakref.WeakKeyDictionary()


def fast_load(schema: Schema, body: Any) -> Any:
    """`schema.load(body)` for bodies the compiled walk accepts; raises Fallback otherwise."""
    loader = _compiled.get(schema)
    if loader is None:
        loader = _compiled[schema] = compile_schema(schema)
    return loader(body)


def compile_schema(schema: Schema) -> Loader:
    """A loader equal to `schema.load` wherever it does not raise Fallback."""
    if any(schema._hooks.values()):  # pre/post-load, validates, validates_schema: not mirrored
        raise Unsupported(f"{type(schema).__name__} has processing hooks")
    if schema.many or schema.partial or schema.unknown != RAISE:
        raise Unsupported(f"{type(schema).__name__}: only many=False, partial=None, unknown=RAISE")
    if schema.dump_fields.keys() - schema.load_fields.keys():
        raise Unsupported(f"{type(schema).__name__} has dump-only fields")
    steps: list[tuple[str, Callable[[Any, Any], Any], bool, Any]] = []
    for name, field in schema.load_fields.items():
        if field.data_key is not None or field.attribute is not None:
            raise Unsupported(f"{type(schema).__name__}.{name}: data_key and attribute are not mirrored")
        steps.append((name, _compile_field(field, name), field.required, field.load_default))
    known = frozenset(schema.load_fields)
    dict_class = schema.dict_class

    def load(data: Any) -> Any:
        if type(data) is not dict or not known.issuperset(data):  # not an object, or unknown keys
            raise Fallback
        out = dict_class()
        for name, step, required, default in steps:
            value = data.get(name, missing)
            if value is missing:
                if required:
                    raise Fallback
                if default is missing:
                    continue
                out[name] = default() if callable(default) else default
            else:
                out[name] = step(value, data)
        return out

    return load


def _compile_field(field: fields.Field, name: str | None) -> Callable[[Any, Any], Any]:
    """What `field.deserialize(value, name, data)` does for a present value, or Fallback."""
    if type(field) is fields.Nested:
        if field.many or field.only or field.exclude or field.unknown not in (None, RAISE):
            raise Unsupported(f"{name}: Nested with many/only/exclude/unknown is not mirrored")
        inner_load = compile_schema(field.schema)

        def convert(value: Any, data: Any) -> Any:
            return inner_load(value)
    elif type(field) is fields.List:
        inner = _compile_field(field.inner, None)  # List passes neither name nor data to its items

        def convert(value: Any, data: Any) -> Any:
            if type(value) is not list:
                raise Fallback
            return [inner(item, None) for item in value]
    else:
        leaf = field._deserialize

        def convert(value: Any, data: Any) -> Any:
            return leaf(value, name, data)

    validators = tuple(field.validators)
    pre, post, allow_none = tuple(field.pre_load), tuple(field.post_load), field.allow_none

    def step(value: Any, data: Any) -> Any:
        try:
            for f in pre:
                value = f(value)
            if value is None:
                if allow_none:
                    return None
                raise Fallback
            out = convert(value, data)
            for validate in validators:
                if validate(out) is False:  # marshmallow also treats a False return as invalid
                    raise Fallback
            for f in post:
                out = f(out)
            return out
        except Fallback:
            raise
        except Exception:
            raise Fallback from None

    return step
