"""R18: ``idp purge`` also deletes expired activation state, keeping what the daily limits still count."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from idp.storage.activation_store import ActivationCodeRow, ActivationTxRow, DeliveryRow
from idp.storage.purge import SqlPurge
from idp.wiring import Services


def add_transaction(services: Services, tx_id: str, at: dt.datetime) -> None:
    with services.uow() as uow:
        uow.session.add(ActivationTxRow(id=tx_id, kind="sms", state="code_sent", browser_hash="b", ip_key="i",
                                        created_at=at, updated_at=at, expires_at=at + dt.timedelta(hours=1)))
        uow.session.flush()
        uow.session.add(ActivationCodeRow(transaction_id=tx_id, purpose="activation", code_hash="h" * 64,
                                          created_at=at, expires_at=at + dt.timedelta(minutes=30)))
        uow.session.add(DeliveryRow(channel="sms", recipient_key="r", payload="", transaction_id=tx_id,
                                         status="sent", created_at=at, next_attempt_at=at, sent_at=at))
        uow.commit()


def count(services: Services, model: type) -> int:
    with services.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def test_old_activation_rows_go_recent_ones_stay(services: Services, clock) -> None:
    now = clock.now()
    add_transaction(services, "old", now - dt.timedelta(days=3))
    add_transaction(services, "recent", now - dt.timedelta(hours=20))  # still counted by the 24 h limits
    report = SqlPurge(services.db).run(now, 92)
    assert report.activation_state == 3
    assert count(services, ActivationTxRow) == count(services, ActivationCodeRow) == 1
    assert count(services, DeliveryRow) == 1
    assert SqlPurge(services.db).run(now, 92).activation_state == 0  # idempotent
