"""Cedar expressions in Cedar's JSON form (EST), simplified and printed as Cedar text.

Partial evaluation leaves residual conditions padded with ``true &&`` and with
the unknown parts of the request written as ``unknown("context")``. Simplifying
removes the padding and names the unknowns again, so a residual reads as the
policy author would write it: ``context.args.amount <= 100``. Parentheses are
printed only where Cedar's precedence needs them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

Expr = Mapping[str, Any]

TRUE: Final[Expr] = {"Value": True}
FALSE: Final[Expr] = {"Value": False}

_IF, _OR, _AND, _REL, _ADD, _MUL, _UNARY, _MEMBER, _PRIMARY = range(9)
_BINARY: Final = {
    "||": _OR,
    "&&": _AND,
    "==": _REL,
    "!=": _REL,
    "<": _REL,
    "<=": _REL,
    ">": _REL,
    ">=": _REL,
    "in": _REL,
    "+": _ADD,
    "-": _ADD,
    "*": _MUL,
}
_METHODS: Final = {"contains", "containsAll", "containsAny", "getTag", "hasTag"}
_FUNCTIONS: Final = {"decimal", "ip", "datetime", "duration", "unknown"}
_NEGATED: Final = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
_IDENT = re.compile(r"^[_a-zA-Z][_a-zA-Z0-9]*$")
_RESERVED = {"true", "false", "if", "then", "else", "in", "is", "like", "has", "__cedar"}


def op_of(expr: Expr) -> str:
    (op,) = expr
    return str(op)


def is_value(expr: Expr, value: bool) -> bool:
    got = expr.get("Value")
    return isinstance(got, bool) and got is value


def conjunction(exprs: list[Expr]) -> Expr:
    """``a && b && ...`` of ``exprs``; ``true`` when empty."""
    result: Expr = TRUE
    for expr in exprs:
        result = expr if result is TRUE else {"&&": {"left": result, "right": expr}}
    return result


def negation(expr: Expr) -> Expr:
    return simplify({"!": {"arg": expr}})


def simplify(expr: Expr) -> Expr:
    """``expr`` without constant padding, double negation, or ``unknown(...)`` placeholders."""
    op = op_of(expr)
    body = expr[op]
    rule = _SIMPLIFY.get(op)
    if rule is not None:
        return rule(body)
    return _map_children(expr, simplify)


def _simplify_and(body: Any) -> Expr:
    left, right = simplify(body["left"]), simplify(body["right"])
    if is_value(left, False) or is_value(right, False):
        return FALSE
    if is_value(left, True):
        return right
    if is_value(right, True):
        return left
    return {"&&": {"left": left, "right": right}}


def _simplify_or(body: Any) -> Expr:
    left, right = simplify(body["left"]), simplify(body["right"])
    if is_value(left, True) or is_value(right, True):
        return TRUE
    if is_value(left, False):
        return right
    if is_value(right, False):
        return left
    return {"||": {"left": left, "right": right}}


def _simplify_not(body: Any) -> Expr:
    arg = simplify(body["arg"])
    if is_value(arg, True) or is_value(arg, False):
        return FALSE if arg["Value"] else TRUE
    inner = op_of(arg)
    if inner == "!":
        return simplify(arg["!"]["arg"])
    if inner in _NEGATED:
        # Cedar writes `a > b` as `!(a <= b)`; the orders it compares are total.
        return {_NEGATED[inner]: arg[inner]}
    return {"!": {"arg": arg}}


def _simplify_if(body: Any) -> Expr:
    condition = simplify(body["if"])
    if is_value(condition, True):
        return simplify(body["then"])
    if is_value(condition, False):
        return simplify(body["else"])
    return {"if-then-else": {**body, "if": condition, "then": simplify(body["then"]),
                             "else": simplify(body["else"])}}  # fmt: skip


def _simplify_unknown(body: Any) -> Expr:
    """``unknown("principal.tenant")`` back to ``principal.tenant``."""
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0].get("Value"), str):
        variable, *attrs = body[0]["Value"].split(".")
        if variable in ("principal", "action", "resource", "context"):
            result: Expr = {"Var": variable}
            for attr in attrs:
                result = {".": {"left": result, "attr": attr}}
            return result
    return {"unknown": body}


_SIMPLIFY: Final[dict[str, Callable[[Any], Expr]]] = {
    "&&": _simplify_and,
    "||": _simplify_or,
    "!": _simplify_not,
    "if-then-else": _simplify_if,
    "unknown": _simplify_unknown,
}


def _map_children(expr: Expr, function: Callable[[Expr], Expr]) -> Expr:
    op = op_of(expr)
    body = expr[op]
    if op in ("Value", "Var", "Slot"):
        return expr
    if op == "Record":
        return {op: {key: function(value) for key, value in body.items()}}
    if isinstance(body, list):
        return {op: [function(item) for item in body]}
    return {op: {key: _map_child(value, function) for key, value in body.items()}}


def _map_child(value: Any, function: Callable[[Expr], Expr]) -> Any:
    """Sub-expressions are one-key mappings; attribute names and patterns pass through."""
    if isinstance(value, Mapping) and len(value) == 1:
        return function(value)
    return value


def render(expr: Expr) -> str:
    """``expr`` as Cedar source text."""
    text, _ = _render(expr)
    return text


def _render(expr: Expr) -> tuple[str, int]:
    """The text of ``expr`` and its precedence level."""
    op = op_of(expr)
    body = expr[op]
    if op == "Value":
        return _literal(body), _UNARY if isinstance(body, int) and body < 0 else _PRIMARY
    if op == "Var":
        return str(body), _PRIMARY
    if op == "Slot":
        return str(body), _PRIMARY
    if op in _BINARY:
        return _binary(op, body), _BINARY[op]
    renderer = _RENDERERS.get(op)
    if renderer is not None:
        return renderer(body)
    return _call(op, body)


def _wrap(expr: Expr, minimum: int) -> str:
    text, level = _render(expr)
    return text if level >= minimum else f"({text})"


def _binary(op: str, body: Any) -> str:
    level = _BINARY[op]
    # && and || are associative; the others bind left, and relations do not chain.
    left_min = level if level in (_OR, _AND, _ADD, _MUL) else level + 1
    right_min = level if level in (_OR, _AND) else level + 1
    return f"{_wrap(body['left'], left_min)} {op} {_wrap(body['right'], right_min)}"


def _not(body: Any) -> tuple[str, int]:
    return f"!{_wrap(body['arg'], _UNARY)}", _UNARY


def _neg(body: Any) -> tuple[str, int]:
    return f"-{_wrap(body['arg'], _UNARY)}", _UNARY


def _attr(body: Any) -> tuple[str, int]:
    return f"{_wrap(body['left'], _MEMBER)}{_access(body['attr'])}", _MEMBER


def _has(body: Any) -> tuple[str, int]:
    return f"{_wrap(body['left'], _ADD)} has {_name(body['attr'])}", _REL


def _like(body: Any) -> tuple[str, int]:
    pattern = "".join(
        "*" if part == "Wildcard" else _escape(part["Literal"]).replace("*", "\\*")
        for part in body["pattern"]
    )
    return f'{_wrap(body["left"], _ADD)} like "{pattern}"', _REL


def _is(body: Any) -> tuple[str, int]:
    text = f"{_wrap(body['left'], _ADD)} is {body['entity_type']}"
    if "in" in body:
        text += f" in {_wrap(body['in'], _ADD)}"
    return text, _REL


def _if(body: Any) -> tuple[str, int]:
    parts = (render(body["if"]), render(body["then"]), render(body["else"]))
    return "if {} then {} else {}".format(*parts), _IF


def _set(body: Any) -> tuple[str, int]:
    return "[" + ", ".join(render(item) for item in body) + "]", _PRIMARY


def _record(body: Any) -> tuple[str, int]:
    fields = ", ".join(f"{_name(key)}: {render(value)}" for key, value in body.items())
    return "{" + fields + "}", _PRIMARY


def _is_empty(body: Any) -> tuple[str, int]:
    return f"{_wrap(body['arg'], _MEMBER)}.isEmpty()", _MEMBER


def _method(name: str) -> Callable[[Any], tuple[str, int]]:
    def render_method(body: Any) -> tuple[str, int]:
        return f"{_wrap(body['left'], _MEMBER)}.{name}({render(body['right'])})", _MEMBER

    return render_method


_RENDERERS: Final[dict[str, Callable[[Any], tuple[str, int]]]] = {
    "!": _not,
    "neg": _neg,
    ".": _attr,
    "has": _has,
    "like": _like,
    "is": _is,
    "if-then-else": _if,
    "Set": _set,
    "Record": _record,
    "isEmpty": _is_empty,
    **{name: _method(name) for name in _METHODS},
}


def _call(name: str, args: Any) -> tuple[str, int]:
    """An extension function: ``decimal("1.0")``, or a method such as ``a.lessThan(b)``."""
    if not isinstance(args, list) or not args:
        return f"{name}()", _PRIMARY
    if name in _FUNCTIONS:
        return f"{name}({', '.join(render(arg) for arg in args)})", _PRIMARY
    receiver, *rest = args
    return f"{_wrap(receiver, _MEMBER)}.{name}({', '.join(render(a) for a in rest)})", _MEMBER


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return f'"{_escape(value)}"'
    if isinstance(value, list):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    if isinstance(value, Mapping):
        if "__entity" in value:
            return _entity(value["__entity"])
        if "__extn" in value:
            extension = value["__extn"]
            return f"{extension['fn']}({_literal(extension['arg'])})"
        fields = ", ".join(f"{_name(k)}: {_literal(v)}" for k, v in value.items())
        return "{" + fields + "}"
    return json.dumps(value)


def _entity(uid: Mapping[str, str]) -> str:
    return f'{uid["type"]}::"{_escape(uid["id"])}"'


def entity(uid: Mapping[str, str]) -> str:
    """An entity uid ``{"type": ..., "id": ...}`` as Cedar text: ``Role::"agent"``."""
    return _entity(uid)


def _access(attr: str) -> str:
    return f".{attr}" if _IDENT.match(attr) and attr not in _RESERVED else f'["{_escape(attr)}"]'


def _name(name: str) -> str:
    return name if _IDENT.match(name) and name not in _RESERVED else f'"{_escape(name)}"'


def _escape(text: str) -> str:
    out = []
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20:
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    return "".join(out)
