"""SAML front-end settings, with the defaults of SECURITY §3 (Shibboleth-like lifetimes, 3 min skew)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from idp.settings import Settings


@dataclass(frozen=True)
class SamlConfig:
    """Everything the SAML front-end needs from configuration (tests build their own)."""

    base_url: str
    assertion_lifetime: dt.timedelta = dt.timedelta(minutes=5)
    message_lifetime: dt.timedelta = dt.timedelta(minutes=3)
    clock_skew: dt.timedelta = dt.timedelta(minutes=3)
    metadata_valid_for: dt.timedelta = dt.timedelta(days=7)
    metadata_cache_duration: str = "PT6H"
    relay_state_max_bytes: int = 1024
    redirect_param_max_bytes: int = 64 * 1024
    inflated_max_bytes: int = 256 * 1024
    pending_ttl: dt.timedelta = dt.timedelta(minutes=5)
    logout_chain_ttl: dt.timedelta = dt.timedelta(minutes=10)
    key_check_interval_seconds: float = 10.0

    @property
    def entity_id(self) -> str:
        """Our entityID is the metadata URL (DESIGN §4)."""
        return f"{self.base_url}/saml/metadata"

    def url(self, path: str) -> str:
        """An absolute URL of ours."""
        return f"{self.base_url}{path}"

    @property
    def replay_ttl(self) -> dt.timedelta:
        """How long a consumed request ID is remembered: message lifetime plus skew (6 min)."""
        return self.message_lifetime + self.clock_skew

    @classmethod
    def from_settings(cls, settings: Settings) -> SamlConfig:
        """Build from the application settings."""
        return cls(base_url=settings.server.base_url.rstrip("/"))
