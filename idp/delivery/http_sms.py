"""``HttpSmsSender``: SMS through an HTTP gateway — a JSON POST with a bearer token, timeouts, bounded retries.

The request body is ``{"to": "+33612345678", "text": "…", "sender": "…"}``; any 2xx is a success. Network
errors, timeouts and 5xx/429 answers are retried (at most ``retries`` more times, waiting ``backoff``, then twice
as long…); other 4xx answers are final. Every attempt carries the message's ``Idempotency-Key`` header, so a
gateway that received a request we stopped waiting for (a timeout) delivers it once however often it comes
back (here, and from the delivery queue's later retries). The token and the text are never logged.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from idp.core.delivery import DeliveryFailed

RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


class HttpSmsSender:
    """``SmsSender`` on ``urllib`` (no extra dependency)."""

    def __init__(self, url: str, token: str, *, timeout: float = 5.0, retries: int = 2, backoff: float = 0.5,
                 sender: str = "", sleep: Callable[[float], None] = time.sleep) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("the SMS gateway URL must be http(s)")
        self.url, self._token, self.timeout = url, token, timeout
        self.retries, self.backoff, self.sender = max(0, retries), backoff, sender
        self._sleep = sleep

    def _post(self, body: bytes, key: str) -> int:
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Authorization": f"Bearer {self._token}"} | ({"Idempotency-Key": key} if key else {})
        request = urllib.request.Request(self.url, data=body, method="POST", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured URL
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def send(self, to: str, text: str, *, key: str = "") -> None:
        """POST the message; retry transient failures with exponential backoff; raise ``DeliveryFailed``."""
        body = json.dumps({"to": to, "text": text, "sender": self.sender}).encode()
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status = self._post(body, key)
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                reason = f"sms gateway: {type(exc).__name__}"
                continue
            if 200 <= status < 300:
                return
            reason = f"sms gateway: HTTP {status}"
            if status not in RETRYABLE:
                raise DeliveryFailed(reason, transient=False)
        raise DeliveryFailed(reason)
