"""The one place where domain errors become HTTP answers: a status and a clear `detail`."""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.errors import Conflict, DomainError, ErrorCode, Forbidden, InvalidInput, NotFound

# A district named in a request body that does not exist is bad input, not a missing page.
STATUS_OF_CODE = {ErrorCode.DISTRICT_NOT_FOUND: 422, ErrorCode.DISTRICT_UNKNOWN: 422}
STATUS_OF_KIND: dict[type[DomainError], int] = {
    NotFound: 404,
    Forbidden: 403,
    InvalidInput: 422,
    Conflict: 409,
}
Params = dict[str, Any]
DETAILS: dict[ErrorCode, Callable[[Params], str]] = {
    ErrorCode.COURIER_NAME_LENGTH: lambda p: "name: {min} to {max} visible characters".format(**p),
    ErrorCode.DISTRICT_NAME_LENGTH: lambda p: "name: {min} to {max} visible characters".format(**p),
    ErrorCode.DESCRIPTION_LENGTH: lambda p: "name: {min} to {max} characters".format(**p),
    ErrorCode.NO_DISTRICTS: lambda p: "districts: name at least one",
    ErrorCode.DISTRICT_NOT_FOUND: lambda p: f"unknown districts: {p['district']}",
    ErrorCode.DISTRICT_UNKNOWN: lambda p: f"unknown district: {p['text']}",
    ErrorCode.DISTRICT_EXISTS: lambda p: f"district {p['name']} already exists",
    ErrorCode.COURIER_NOT_FOUND: lambda p: "no such courier",
    ErrorCode.ALREADY_LINKED: lambda p: "the courier has connected their Telegram already",
    ErrorCode.ORDER_NOT_FOUND: lambda p: "no such order",
    ErrorCode.NO_COURIER_FREE: lambda p: (
        f"no courier of {p['district']} is free; nothing was stored"
        ' (send "queue": true to let the order wait)'
    ),
    ErrorCode.ORDER_COMPLETED: lambda p: "the order is already completed",
    ErrorCode.ORDER_CANCELLED: lambda p: "the order was cancelled",
    ErrorCode.ORDER_NOT_IN_PROGRESS: lambda p: "the order is waiting for a courier",
    ErrorCode.ORDER_CHANGED: lambda p: "the order changed just now; read it again",
    ErrorCode.ALREADY_POSTED: lambda p: f"this request posted order {p['sid']} already",
    ErrorCode.WEBHOOK_URL_INVALID: lambda p: f"url: {p['reason']}",
    ErrorCode.WEBHOOK_URL_PRIVATE: lambda p: (
        "url: its host is on a loopback, private or link-local network; webhooks go to the internet"
    ),
    ErrorCode.WEBHOOK_TOO_MANY: lambda p: (
        f"a shop has at most {p['most']} webhook endpoints; delete one first"
    ),
    ErrorCode.WEBHOOK_NOT_FOUND: lambda p: "no such webhook endpoint",
    ErrorCode.IDEMPOTENCY_KEY_REUSED: lambda p: (
        "Idempotency-Key: this key came with another request; use a new key for a new request"
    ),
    ErrorCode.IDEMPOTENCY_KEY_BUSY: lambda p: (
        "Idempotency-Key: the first request with this key is still running; retry shortly"
    ),
    ErrorCode.IDEMPOTENCY_ANSWER_LOST: lambda p: (
        "Idempotency-Key: the first request with this key was carried out, but its answer"
        " was lost; read the result with a GET"
    ),
}


def answer(error: DomainError) -> JSONResponse:
    status = STATUS_OF_CODE.get(error.code) or next(
        code for kind, code in STATUS_OF_KIND.items() if isinstance(error, kind)
    )
    explain = DETAILS.get(error.code)
    detail = explain(error.params) if explain else error.code.replace("_", " ")
    return JSONResponse({"detail": detail}, status_code=status)


def install_validation(app: FastAPI) -> None:
    """FastAPI's 422 with the list of fields, but without echoing the input back: what was
    sent may not even be encodable (a lone surrogate, NaN, infinity), which made it a 500."""

    async def invalid(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        detail = [
            {
                "loc": [_printable(part) for part in e["loc"]],
                "msg": _printable(e["msg"]),
                "type": e["type"],
            }
            for e in error.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_exception_handler(RequestValidationError, invalid)


def _printable(value: object) -> object:
    """A number as it is; text with anything UTF-8 cannot carry replaced."""
    if isinstance(value, int):
        return value
    return str(value).encode("utf-8", "replace").decode("utf-8")


def install(app: FastAPI) -> None:
    async def domain_error(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, DomainError)
        return answer(error)

    app.add_exception_handler(DomainError, domain_error)
