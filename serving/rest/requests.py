"""What a request body may be, read once for every endpoint (and for the predict lane).

JSON with `Content-Type: application/json` (or any `+json` type), or no Content-Type at all, or
curl's `--data` default (`application/x-www-form-urlencoded`, read as JSON when it parses);
`text/csv` where an endpoint reads CSV (/invocations). Only UTF-8. Anything else is a 415 that
names the type sent.
"""

from __future__ import annotations

from typing import Any

from flask import Request

from serving.contract import decode_json
from serving.errors import ApiError

JSON_TYPES = frozenset({"application/json"})
LENIENT_TYPES = frozenset({"", "application/x-www-form-urlencoded"})  # curl --data, or none
# Content-Type header values taken as JSON without parsing parameters (the predict lane's test)
PLAIN_JSON_HEADERS = JSON_TYPES | LENIENT_TYPES
CSV_TYPE = "text/csv"
TRUE, FALSE = frozenset({"true", "1", "yes", ""}), frozenset({"false", "0", "no"})


def reads_as_json(mimetype: str) -> bool:
    return mimetype in JSON_TYPES or mimetype in LENIENT_TYPES or mimetype.endswith("+json")


def read_body(req: Request, csv: bool = False) -> bytes:
    """The raw body, if its content type is one we read (JSON; CSV too where `csv`)."""
    mimetype = req.mimetype
    if not reads_as_json(mimetype) and not (csv and mimetype == CSV_TYPE):
        raise unsupported(f"Content-Type {req.content_type!r}", req)
    charset = req.mimetype_params.get("charset", "utf-8").lower()
    if charset not in ("utf-8", "utf8"):
        raise ApiError(
            "unsupported_charset", f"only UTF-8 is supported, got {charset!r}", status=415
        )
    return req.get_data(cache=False)  # over MAX_CONTENT_LENGTH: werkzeug raises 413


def json_body(raw: bytes, req: Request) -> Any:
    """The body as JSON; a form-encoded body that is not JSON is an unsupported type (415)."""
    try:
        return decode_json(raw)
    except ApiError:
        if req.mimetype == "application/x-www-form-urlencoded":
            raise unsupported("a form body that is not JSON", req) from None
        raise


def unsupported(what: str, req: Request) -> ApiError:
    return ApiError(
        "unsupported_media_type",
        f"cannot read {what}; send JSON with Content-Type: application/json",
        status=415,
        content_type=req.content_type,
    )


def flag(name: str, req: Request) -> bool:
    """A boolean query parameter: true/1/yes or given with no value (`?proba`), false/0/no;
    absent is false; anything else is a 400 that names it."""
    if not req.query_string:  # the common case: no parameters at all
        return False
    value = req.args.get(name)
    if value is None:
        return False
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise ApiError(
        "invalid_parameter",
        f"query parameter {name!r} must be true or false, got {value[:40]!r}",
        parameter=name,
    )


ALIAS_HEADER = "X-Model-Alias"


def requested_alias(req: Request) -> str | None:
    """The alias a request asks for: `?alias=` or the X-Model-Alias header (None: the default)."""
    if req.query_string:
        alias = req.args.get("alias")
        if alias is not None:
            return alias
    return req.headers.get(ALIAS_HEADER) or None
