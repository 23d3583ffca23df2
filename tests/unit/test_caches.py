"""The process's caches (``idp.caches``): lifetimes from ``[caches]``, expiry, no caching at 0, bounded pages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from idp.caches import PageCache, ProcessCaches, TtlCache
from idp.settings import CacheSettings, load_settings


def test_lifetimes_come_from_config_toml(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[caches]\noidc_clients_seconds = 2\nsaml_released_seconds = 0\n"
                      "oidc_client_keys_seconds = 60\n", encoding="utf-8")
    settings = load_settings(config, environ={"IDP_CACHES__CATALOGUE_SECONDS": "7"})
    caches = ProcessCaches(settings.caches)
    assert caches.oidc_clients.ttl == 2.0 and caches.saml_released.ttl == 0.0
    assert caches.oidc_client_keys.ttl == 60.0
    assert caches.catalogue.ttl == 7.0 and caches.saml_service_providers.ttl == CacheSettings().saml_service_providers_seconds


def test_an_entry_lives_its_lifetime_and_none_is_a_value() -> None:
    now = [100.0]
    cache: TtlCache[str, object] = TtlCache(5.0, clock=lambda: now[0])
    cache.put("unknown-client", None)
    assert cache.lookup("unknown-client") == (True, None)  # "not registered" is remembered too
    now[0] += 5.0
    assert cache.lookup("unknown-client") == (False, None)


def test_a_zero_lifetime_keeps_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(0)
    cache.put("k", 1)
    assert cache.get("k") is None


def test_pages_render_once_per_key_and_stay_bounded() -> None:
    pages = PageCache(max_entries=2)
    calls: list[str] = []
    for key in ("a", "a", "b", "c", "a"):
        pages.render(key, lambda key=key: calls.append(key) or key)  # type: ignore[func-returns-value]
    assert calls == ["a", "b", "c", "a"]  # the third key restarted the bounded cache


def test_a_private_key_jwt_clients_fetched_keys_are_kept_their_lifetime(monkeypatch: Any) -> None:
    """``ClientKeys`` fetches a ``jwks_uri`` once per ``oidc_client_keys_seconds`` (a key rotation within it)."""
    from joserfc.jwk import ECKey

    from idp.oidc.assertion import ClientKeys

    jwks = json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=False)]})
    now, fetched = [100.0], []
    keys = ClientKeys(TtlCache(300.0, clock=lambda: now[0]))
    monkeypatch.setattr(keys, "_fetch", lambda url: fetched.append(url) or jwks)
    first = keys.for_client("", "https://rp.example.fr/jwks")
    assert keys.for_client("", "https://rp.example.fr/jwks") is first and len(fetched) == 1
    now[0] += 300.0
    assert keys.for_client("", "https://rp.example.fr/jwks") is not first and len(fetched) == 2
