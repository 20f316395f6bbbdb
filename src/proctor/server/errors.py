"""One JSON error shape for the whole API: ``{"error": {"type", "message", "status"}}``."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from proctor.errors import ProctorError


class ErrorDetail(BaseModel):
    type: str
    """The error's kind: a proctor error's class name, or the HTTP status phrase."""
    message: str
    status: int


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(
    kind: str, message: str, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(type=kind, message=message, status=status))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return "HTTPError"


async def _proctor_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProctorError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
    return error_response(type(exc).__name__, str(exc), exc.http_status, headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(
        _phrase(exc.status_code), str(exc.detail), exc.status_code, dict(exc.headers or {})
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for e in exc.errors():
        where = ".".join(str(part) for part in e.get("loc", ()))
        problems.append(f"{where}: {e.get('msg', 'invalid')}")
    return error_response("InvalidRequest", "; ".join(problems) or "invalid request", 422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    return error_response("InternalError", "internal error; the server log has the details", 500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProctorError, _proctor_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
