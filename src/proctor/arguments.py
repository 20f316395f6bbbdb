"""A tool's typed arguments: the strict model built from a signature, and errors that say
which field is wrong, what was expected and what the tool takes.

Numbers the policy engine cannot hold exactly (Cedar's decimal keeps four places, its
long 64 bits) are refused here, so a tool never receives a value its policy did not see.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from proctor.errors import InvalidAction, ToolDefinitionError
from proctor.policy._cedar import number_problem


def field_of(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(arguments)"


def numbers_beyond_policy(
    value: object, loc: tuple[int | str, ...]
) -> Iterator[tuple[tuple[int | str, ...], str]]:
    """Every number in ``value`` that Cedar would round or refuse, with where it is.

    Cedar's ``decimal`` keeps four places and its ``long`` 64 bits; a policy deciding on
    ``100.00005`` would see ``100.0000``, and the tool would receive more than was allowed.
    Such a call is invalid, so the tool never receives a value the policy did not see.
    """
    if isinstance(value, bool):
        return
    if isinstance(value, int | float | Decimal):
        problem = number_problem(value)
        if problem is not None:
            yield loc, problem
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from numbers_beyond_policy(getattr(value, name), (*loc, name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from numbers_beyond_policy(item, (*loc, str(key)))
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from numbers_beyond_policy(item, (*loc, index))


def invalid_action(
    tool: str, model: type[BaseModel], found: list[tuple[str, str]]
) -> InvalidAction:
    """The error for a call to ``tool`` with these problems, naming what it takes."""
    first_field, first = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    allowed = ", ".join(type_summary(model))
    return InvalidAction(
        tool,
        f"invalid call to {tool}: {first}{more}. {tool} takes: {allowed}.",
        field=first_field,
        problems=tuple(found),
    )


def problems(tool: str, model: type[BaseModel], exc: ValidationError) -> list[tuple[str, str]]:
    """``(field, message)`` for each way the arguments do not fit the model."""
    found: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        name = field_of(error["loc"])
        kind = error["type"]
        if kind == "json_invalid":
            message = f"arguments are not valid JSON ({error['msg']})"
        elif kind == "missing":
            message = f"field {name!r} is required ({_expected(model, name)})"
        elif kind == "extra_forbidden":
            message = f"field {name!r} is not an argument of {tool}"
        else:
            message = f"field {name!r}: {error['msg']} ({_expected(model, name)})"
        found.append((name, message))
    return found


def _expected(model: type[BaseModel], name: str) -> str:
    info = model.model_fields.get(name.split(".")[0])
    if info is None:
        return "not an argument"
    return f"expected {_type_name(info.annotation)}"


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def type_summary(model: type[BaseModel]) -> list[str]:
    """``name: type`` for each argument, ``?`` marking optional ones."""
    out = []
    for name, info in model.model_fields.items():
        mark = "" if info.is_required() else "?"
        out.append(f"{name}{mark}: {_type_name(info.annotation)}")
    return out


def args_model(
    fn: Callable[..., Any], name: str, context_type: type
) -> tuple[type[BaseModel], str | None]:
    """The strict model of ``fn``'s arguments, and the name of its ``context_type``
    parameter (which the runtime fills in) if it has one."""
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    context_param = None
    for param in inspect.signature(fn).parameters.values():
        annotation = hints.get(param.name)
        if annotation is context_type:
            context_param = param.name
            continue
        if annotation is None:
            raise ToolDefinitionError(
                f"tool {name}: parameter {param.name!r} needs a type annotation "
                "so its arguments can be validated"
            )
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"tool {name}: *args/**kwargs cannot be validated; declare each argument"
            )
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model = create_model(
        f"{name}_args",
        __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
        **fields,
    )
    return model, context_param
