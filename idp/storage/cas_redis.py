"""The CAS ticket store on Redis (``[redis] url`` set): same contract as the database's (``cas_tickets``).

Keys, under ``idp:cas:`` (a store may be given another prefix):

- ``t:<sha256>`` a service or proxy ticket, ``g:<sha256>`` a proxy-granting ticket: the ticket's JSON, with a
  TTL up to its ``expires_at`` (10 s for ST/PT, the SSO session's end for a PGT);
- ``a:<session id>:<service id>``: the attributes kept for a session and service, as the account's register
  version they were computed from, a newline, and their JSON (TTL: the longest an SSO session may live);
- ``s:<session id>`` and ``v:<service id>``: sorted sets of the keys above by expiry (milliseconds), so that
  ``end_session`` and ``forget_service`` find what to delete; each addition prunes the members that have
  expired, so an index never holds more than the live keys.

Single use is ``GETDEL`` (Redis ≥ 6.2): atomic, one caller gets the value, a concurrent one gets nothing.
Several keys are written in one Lua script (one round trip, all or nothing as seen by other clients). Every
Redis failure becomes ``ServiceUnavailable`` (a 503, or ``INTERNAL_ERROR`` with 503 on the CAS wire).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import redis

from idp.errors import ServiceUnavailable
from idp.storage.cas_store import KIND_PGT, TicketRecord

PREFIX = "idp:cas:"

# KEYS: key, session index, service index. ARGV: value, TTL (ms).
_ADD = """
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for i = 2, 3 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZADD', KEYS[i], now + ttl, KEYS[1])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
"""

# KEYS: attributes, ticket, session index, service index. ARGV: ticket JSON up to its payload, TTL (ms), the
# account's register version (a copy computed from another one is not used).
_FROM_SESSION = """
local kept = redis.call('GET', KEYS[1])
if not kept then return 0 end
local cut = string.find(kept, '\\n', 1, true)
if string.sub(kept, 1, cut - 1) ~= ARGV[3] then return 0 end
local payload = string.sub(kept, cut + 1)
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[2], ARGV[1] .. payload .. '}', 'PX', ttl)
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
for i = 3, 4 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  redis.call('ZADD', KEYS[i], now + ttl, KEYS[2])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return 1
"""

# KEYS: an index. Deletes the index and every key it lists; returns how many keys existed.
_DROP_INDEXED = """
local keys = redis.call('ZRANGE', KEYS[1], 0, -1)
local count = 0
for i = 1, #keys, 500 do
  count = count + redis.call('DEL', unpack(keys, i, math.min(i + 499, #keys)))
end
redis.call('DEL', KEYS[1])
return count
"""


class RedisCasTickets:
    """``CasTicketStore`` on Redis; see the module docstring for the keys."""

    def __init__(self, client: redis.Redis, *, attributes_ttl: dt.timedelta, prefix: str = PREFIX) -> None:
        self._r = client
        self._prefix = prefix
        self._attributes_ms = max(int(attributes_ttl.total_seconds() * 1000), 1)
        self._add = client.register_script(_ADD)
        self._from_session = client.register_script(_FROM_SESSION)
        self._drop = client.register_script(_DROP_INDEXED)

    # --- keys ------------------------------------------------------------------------------------

    def _ticket_key(self, ticket_id: str, kind: str) -> str:
        return f"{self._prefix}{'g' if kind == KIND_PGT else 't'}:{ticket_id}"

    def _attributes_key(self, session_id: str, service_id: str) -> str:
        return f"{self._prefix}a:{session_id}:{service_id}"

    def _indexes(self, session_id: str, service_id: str) -> list[str]:
        return [f"{self._prefix}s:{session_id}", f"{self._prefix}v:{service_id}"]

    # --- encoding --------------------------------------------------------------------------------

    @staticmethod
    def _head(record: TicketRecord) -> str:
        """The ticket's JSON without its payload and closing brace: ``from_session`` appends the kept copy."""
        fields = {"id": record.id, "kind": record.kind, "service_id": record.service_id, "service": record.service,
                  "session_id": record.session_id, "account_id": record.account_id, "fresh": record.fresh,
                  "created_at": record.created_at.isoformat(), "expires_at": record.expires_at.isoformat(),
                  "proxies": list(record.proxies)}
        return json.dumps(fields, ensure_ascii=False)[:-1] + ', "payload": '

    @staticmethod
    def _decode(raw: bytes | None) -> TicketRecord | None:
        if raw is None:
            return None
        values = json.loads(raw)
        values["created_at"] = dt.datetime.fromisoformat(values["created_at"])
        values["expires_at"] = dt.datetime.fromisoformat(values["expires_at"])
        values["proxies"] = tuple(values["proxies"])
        values["payload"] = values["payload"] or {}
        return TicketRecord(**values)

    @staticmethod
    def _ttl_ms(record: TicketRecord) -> int:
        """Until the ticket's expiry, by the creator's clock (at least 1 ms: Redis refuses 0)."""
        return max(int((record.expires_at - record.created_at).total_seconds() * 1000), 1)

    # --- CasTicketStore --------------------------------------------------------------------------

    def add(self, record: TicketRecord) -> None:
        """Store a new ticket (by hash) with its TTL, listed under its session and service."""
        value = self._head(record) + json.dumps(record.payload or None, ensure_ascii=False) + "}"
        keys = [self._ticket_key(record.id, record.kind), *self._indexes(record.session_id, record.service_id)]
        self._call(self._add, keys, [value, self._ttl_ms(record)])

    def from_session(self, record: TicketRecord, register: str) -> bool:
        """Store a ticket carrying the attributes kept for its session and service from the account's register
        version ``register``; False if none."""
        keys = [self._attributes_key(record.session_id, record.service_id),
                self._ticket_key(record.id, record.kind), *self._indexes(record.session_id, record.service_id)]
        return bool(self._call(self._from_session, keys, [self._head(record), self._ttl_ms(record), register]))

    def consume(self, ticket_id: str) -> TicketRecord | None:
        """Take a service or proxy ticket out: ``GETDEL``, one winner."""
        try:
            raw = self._r.getdel(self._ticket_key(ticket_id, "ST"))
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc
        return self._decode(raw)  # type: ignore[arg-type]

    def proxy_granting(self, ticket_id: str) -> TicketRecord | None:
        """A proxy-granting ticket, read and kept (CAS 3.0 §3.3.1)."""
        try:
            raw = self._r.get(self._ticket_key(ticket_id, KIND_PGT))
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc
        return self._decode(raw)  # type: ignore[arg-type]

    def session_attributes(self, session_id: str, service_id: str, register: str) -> dict[str, Any] | None:
        """The attributes computed for this session and service from register version ``register``, if any."""
        try:
            raw = self._r.get(self._attributes_key(session_id, service_id))
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc
        if not raw:
            return None
        version, _, payload = raw.decode().partition("\n")  # type: ignore[union-attr]
        return json.loads(payload) if version == register else None

    def keep_session_attributes(self, session_id: str, service_id: str, payload: dict[str, Any],
                                at: dt.datetime, register: str) -> None:
        """Remember a session's attributes for a service, computed from register version ``register``, in place
        of any earlier copy (a stale one, or a concurrent first ticket's, computed from the same register)."""
        keys = [self._attributes_key(session_id, service_id), *self._indexes(session_id, service_id)]
        value = register + "\n" + json.dumps(payload, ensure_ascii=False)
        self._call(self._add, keys, [value, self._attributes_ms])

    def end_session(self, session_id: str) -> None:
        """Drop every ticket and the attributes of an ended SSO session (its PGTs die with it)."""
        self._call(self._drop, [f"{self._prefix}s:{session_id}"], [])

    def forget_service(self, service_id: str) -> None:
        """Drop every ticket and attributes copy of a registration that is removed."""
        self._call(self._drop, [f"{self._prefix}v:{service_id}"], [])

    @staticmethod
    def _call(script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return script(keys=keys, args=args)
        except redis.RedisError as exc:
            raise ServiceUnavailable() from exc
