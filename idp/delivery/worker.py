"""The delivery worker: sends queued messages after the answer, so timing never tells whether one was sent.

Each process has one worker. With ``[delivery] background = true`` (the default) a daemon thread, started on
first use (after the server forks its workers), sends as soon as it is woken and polls every few seconds; otherwise the
blueprints call ``after_response`` once the answer has been sent (and tests call ``run_pending``). Claiming a
message is a conditional update, so several processes never send the same one.

A transient failure (gateway timeout, 5xx) puts the message back in the queue for a later attempt (``retry_seconds``,
doubling, at most ``max_attempts`` in all), with the same idempotency key so the gateway delivers it once; meanwhile
the activation page says the SMS is delayed. A refusal, or the last attempt, marks it failed (the page then offers
« Renvoyer le SMS »).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from idp import metrics
from idp.core.clock import Clock
from idp.core.delivery import DeliveryFailed, Mailer, MailMessage, SmsSender
from idp.storage.activation_store import ClaimedMessage, SqlDeliveryQueue

log = logging.getLogger("idp.delivery")


class DeliveryWorker:
    """Sends what the flows queued, through the configured ``Mailer`` and ``SmsSender``."""

    def __init__(self, queue: SqlDeliveryQueue, mailer: Mailer, sms: SmsSender, clock: Clock, *,
                 background: bool = True, poll_seconds: float = 5.0, max_attempts: int = 5,
                 retry_seconds: float = 30.0) -> None:
        self.queue = queue
        self.mailer = mailer
        self.sms = sms
        self._clock = clock
        self.background = background
        self._poll = poll_seconds
        self.max_attempts, self.retry_seconds = max(1, max_attempts), retry_seconds
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = False

    def kick(self) -> None:
        """Something was queued: wake the thread (background mode); otherwise wait for ``after_response``."""
        if self.background:
            self._ensure_thread()
            self._wake.set()

    def after_response(self) -> None:
        """Called once the answer has been sent: deliver now unless a background thread does it."""
        if not self.background:
            self.run_pending()

    def run_pending(self, limit: int = 50) -> int:
        """Send every due message; returns how many were sent."""
        sent = 0
        while True:
            batch = self.queue.claim_due(self._clock.now(), limit)
            for message in batch:
                sent += self._deliver(message)
            if len(batch) < limit:
                return sent

    def _deliver(self, message: ClaimedMessage) -> int:
        row_id, channel, payload = message.id, message.channel, message.payload
        try:
            if channel == "sms":
                self.sms.send(payload["to"], payload["text"], key=message.key)
            else:
                self.mailer.send(MailMessage(to=payload["to"], subject=payload.get("subject", ""),
                                             body=payload["text"]))
        except DeliveryFailed as exc:
            if exc.transient and message.attempt < self.max_attempts:
                wait = self.retry_seconds * 2 ** (message.attempt - 1)
                log.warning("delivery %s of message %s failed (attempt %s), retry in %ss: %s", channel, row_id,
                            message.attempt, wait, exc.reason)
                self.queue.retry_later(row_id, exc.reason, self._clock.now() + dt.timedelta(seconds=wait))
                metrics.DELIVERIES.labels(channel=channel, outcome="retry").inc()
                return 0
            log.warning("delivery %s of message %s failed: %s", channel, row_id, exc.reason)
            self.queue.mark_failed(row_id, exc.reason, self._clock.now())
            metrics.DELIVERIES.labels(channel=channel, outcome="failed").inc()
            return 0
        except Exception as exc:  # noqa: BLE001 - an adapter bug must not leave the message "sending"
            log.exception("delivery %s of message %s failed unexpectedly", channel, row_id)
            self.queue.mark_failed(row_id, type(exc).__name__, self._clock.now())
            metrics.DELIVERIES.labels(channel=channel, outcome="failed").inc()
            return 0
        self.queue.mark_sent(row_id, self._clock.now())
        metrics.DELIVERIES.labels(channel=channel, outcome="sent").inc()
        return 1

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="idp-delivery", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self._poll)
            self._wake.clear()
            try:
                self.run_pending()
            except Exception:  # noqa: BLE001 - the database may be down: try again at the next wake-up
                log.exception("delivery worker: sending failed, will retry")

    def stop(self) -> None:
        """Stop the background thread (tests, shutdown)."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
