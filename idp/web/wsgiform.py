"""A small urlencoded form read by a WSGI lane in front of Flask, exactly as werkzeug's ``request.form``.

The lanes (``idp.oidc.fastlane``, ``idp.web.portal_lane``) read the body themselves and put it back, so that
Flask reads the same bytes when the lane hands the request over; anything they should not judge (another
content type, chunked, too large, a repeated parameter, a body that is not UTF-8) is left to Flask.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" codec error handler used below)

FORM = "application/x-www-form-urlencoded"


def read_form(environ: dict[str, Any], max_body: int) -> bytes | None:
    """The urlencoded body (and ``wsgi.input`` rewound for Flask), or None: not a body a lane reads."""
    mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if mimetype != FORM or "HTTP_TRANSFER_ENCODING" in environ:
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    if not 0 < length <= max_body:
        return None
    body: bytes = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body if len(body) == length else None


def form_values(body: bytes) -> dict[str, str] | None:
    """The parameters as werkzeug's ``request.form`` reads them; None if one is repeated (the general path
    judges those) or the body is not UTF-8 (werkzeug would see an empty form)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    values: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"):
        if name in values:
            return None
        values[name] = value
    return values
