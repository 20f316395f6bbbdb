"""A tool's typed arguments given by a JSON Schema (an MCP tool, an OpenAPI operation, a
framework's tool), validated as strictly as a decorated function's.

The schema is checked once, when the tool is built. A call is parsed as JSON and
validated against it (JSON Schema draft 2020-12, formats included); an argument the
schema does not declare is refused unless the schema allows more with
``additionalProperties``, as a function's signature would. Defaults the schema declares
for absent arguments are filled in, so the policy decides on what the tool receives.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaViolation
from pydantic import BaseModel, ConfigDict, Field, create_model

from proctor.errors import InvalidAction, ToolDefinitionError


class SchemaArguments(BaseModel):
    """Arguments validated against a JSON Schema. Only those given (or filled in from the
    schema's defaults) are dumped: an absent optional argument stays absent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("exclude_unset", True)
        kwargs.setdefault("by_alias", True)
        return super().model_dump(**kwargs)


class OpenSchemaArguments(SchemaArguments):
    """Arguments of a schema that allows more than it declares (``additionalProperties``)."""

    model_config = ConfigDict(frozen=True, extra="allow")


class ArgumentSchema:
    """The JSON Schema of one tool's arguments, and the model its calls parse into."""

    def __init__(self, tool: str, schema: Mapping[str, Any]) -> None:
        self.tool = tool
        self.schema = _strict(tool, dict(schema))
        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as exc:
            raise ToolDefinitionError(
                f"tool {tool}: its input schema is not a valid JSON Schema: {exc.message}"
            ) from None
        self._validator = Draft202012Validator(
            self.schema, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        self.properties: dict[str, Any] = dict(self.schema.get("properties", {}))
        self.required = frozenset(self.schema.get("required", ()))
        open_ended = self.schema.get("additionalProperties") not in (None, False)
        fields: dict[str, Any] = {}
        for index, name in enumerate(self.properties):
            default = ... if name in self.required else None
            if _plain_name(name):
                fields[name] = (Any, default)
            else:  # a name pydantic reserves, or no identifier: kept under an alias
                fields[f"arg_{index}"] = (Any, Field(default, alias=name))
        self.model: type[SchemaArguments] = create_model(
            f"{tool}_args",
            __base__=OpenSchemaArguments if open_ended else SchemaArguments,
            **fields,
        )

    def validate_json(self, raw: str | bytes) -> SchemaArguments:
        """The arguments in ``raw``, or ``InvalidAction`` naming each field that is wrong."""
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self.invalid([("(arguments)", f"arguments are not valid JSON ({exc})")]) from None
        if not isinstance(data, dict):
            raise self.invalid(
                [("(arguments)", f"arguments must be a JSON object, got {_json_type(data)}")]
            )
        found = [self._problem(error) for error in self._violations(data)]
        if found:
            raise self.invalid(found)
        for name, spec in self.properties.items():
            if name not in data and isinstance(spec, dict) and "default" in spec:
                data[name] = spec["default"]
        return self.model.model_validate(data)

    def invalid(self, found: list[tuple[str, str]]) -> InvalidAction:
        first_field, first = found[0]
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return InvalidAction(
            self.tool,
            f"invalid call to {self.tool}: {first}{more}. {self.tool} takes: "
            f"{', '.join(self.summary()) or 'no arguments'}.",
            field=first_field,
            problems=tuple(found),
        )

    def names(self) -> list[str]:
        """The arguments' names, as calls give them."""
        return list(self.properties)

    def summary(self) -> list[str]:
        """``name: type`` for each argument, ``?`` marking optional ones."""
        return [
            f"{name}{'' if name in self.required else '?'}: {_type_of(spec)}"
            for name, spec in self.properties.items()
        ]

    def _violations(self, data: dict[str, Any]) -> list[SchemaViolation]:
        found = self._validator.iter_errors(data)
        return sorted(found, key=lambda e: [str(part) for part in e.absolute_path])

    def _problem(self, error: SchemaViolation) -> tuple[str, str]:
        where = [str(part) for part in error.absolute_path]
        required = error.validator_value if isinstance(error.validator_value, list) else []
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [n for n in required if n not in error.instance]
            name = ".".join([*where, str(missing[0])]) if missing else ".".join(where)
            expected = _type_of(self.properties.get(name, {})) if not where else "a value"
            return name, f"field {name!r} is required (expected {expected})"
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            schema = error.schema if isinstance(error.schema, Mapping) else {}
            declared = set(schema.get("properties", {}))
            extra = sorted(str(k) for k in error.instance if k not in declared)
            name = ".".join([*where, extra[0]]) if extra else ".".join(where)
            return name, f"field {name!r} is not an argument of {self.tool}"
        name = ".".join(where) or "(arguments)"
        return name, f"field {name!r}: {error.message}"


def _strict(tool: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of an object whose undeclared arguments are refused, unless it says."""
    kind = schema.get("type", "object")
    if kind != "object":
        raise ToolDefinitionError(
            f"tool {tool}: its input schema must describe a JSON object (type 'object'), "
            f"not {kind!r}"
        )
    strict = {"type": "object", **schema}
    strict.setdefault("additionalProperties", False)
    strict.setdefault("properties", {})
    return strict


def _plain_name(name: str) -> bool:
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith(("_", "model_"))
        and not hasattr(BaseModel, name)
    )


def _type_of(spec: Any) -> str:
    if not isinstance(spec, dict):
        return "any"
    kind = spec.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind is not None:
        return str(kind)
    if "enum" in spec:
        return " | ".join(json.dumps(v) for v in spec["enum"])
    for union in ("anyOf", "oneOf"):
        if union in spec:
            return " | ".join(_type_of(s) for s in spec[union])
    return "any"


def _json_type(value: object) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
