"""Typed settings: ``config.toml`` read once into frozen dataclasses, then ``IDP_SECTION__KEY`` overrides.

An unknown section or key, or a value of the wrong type, stops start-up with a message naming it.
Secrets never come from ``config.toml``: the secret key is read from ``IDP_SECRET_KEY`` or from a file
outside the repository (``keys/secret.key`` by default, written by ``idp init``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idp.errors import ConfigurationError

ENV_PREFIX = "IDP_"
#: Prefixes of variables that belong to the test suite, benchmarks and development scripts, not to settings.
TOOLING_PREFIXES = ("IDP_TEST_", "IDP_BENCH_", "IDP_DEV_")
#: Environment variables with the prefix that are not settings overrides.
RESERVED_ENV = {"IDP_CONFIG", "IDP_SECRET_KEY", "IDP_PAIRWISE_SALT", "IDP_TEST_DATABASE_URL", "IDP_TEST_REDIS_URL",
                "IDP_SMTP_PASSWORD", "IDP_SMS_TOKEN", "IDP_FEDERATION_CLIENT_SECRET", "IDP_METRICS_TOKEN"}


@dataclass(frozen=True)
class ServerSettings:
    base_url: str = "http://127.0.0.1:5000"
    product_name: str = "Compte scolaire"
    development: bool = False
    #: Re-read a template when its file changes (a stat of every template at every render, ~0.15 ms a page):
    #: for editing templates only; production and the benchmarks compile each template once per process.
    reload_templates: bool = False
    trusted_proxies: int = 0
    max_body_bytes: int = 65536
    outage_retry_after_seconds: int = 30


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = "sqlite:///var/idp.sqlite3"
    pool_size: int = 10
    pool_timeout_seconds: int = 5
    echo: bool = False


@dataclass(frozen=True)
class RedisSettings:
    url: str = ""


@dataclass(frozen=True)
class KeySettings:
    directory: str = "keys"
    #: SAML signing keys: 2048 bits like the federations we join (ÉduConnect-style metadata, ANSSI RGS B1 until
    #: 2030, rotated with ``idp keys rotate``); 3072 is accepted and roughly triples the cost of each signature.
    rsa_bits: int = 2048


@dataclass(frozen=True)
class SessionSettings:
    idle_minutes: int = 30
    absolute_hours: int = 10
    touch_interval_seconds: int = 60


@dataclass(frozen=True)
class AuthnSettings:
    request_ttl_minutes: int = 60


@dataclass(frozen=True)
class PasswordSettings:
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    max_concurrent_hashes: int = 0  # 0: one per core the process may run on
    min_length: int = 8
    max_length: int = 256


@dataclass(frozen=True)
class ThrottleSettings:
    account_free_failures: int = 5
    account_base_delay_seconds: int = 60
    account_max_delay_seconds: int = 900
    ip_max_failures: int = 30
    network_max_failures: int = 100
    ip_window_seconds: int = 600


@dataclass(frozen=True)
class RegisterSettings:
    purge_after_days: int = 92
    batch_size: int = 5000


#: Protocol front-ends that can be enabled in ``[protocols] enabled``.
KNOWN_PROTOCOLS = ("saml", "oidc", "cas")


@dataclass(frozen=True)
class ProtocolSettings:
    enabled: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [p for p in self.enabled if p not in KNOWN_PROTOCOLS]
        if unknown:
            raise ConfigurationError(f"[protocols] enabled : protocole inconnu {unknown[0]!r} "
                                     f"(connus : {', '.join(KNOWN_PROTOCOLS)})")


@dataclass(frozen=True)
class CacheSettings:
    """Lifetimes of the per-process caches (``idp.caches``): other workers see an ``idp …`` change within them."""

    oidc_clients_seconds: float = 5.0
    saml_service_providers_seconds: float = 5.0
    saml_released_seconds: float = 300.0  # attributes released to an SP in one SSO session
    catalogue_seconds: float = 30.0  # "Mes services"
    oidc_client_keys_seconds: float = 300.0  # keys of ``private_key_jwt`` clients (their ``jwks_uri``, fetched)


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "INFO"
    json: bool = True


@dataclass(frozen=True)
class MailSettings:
    backend: str = "outbox"  # outbox (development) | smtp | memory (unit tests)
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"  # starttls | tls (implicit, port 465) | none (local relay only)
    username: str = ""  # the password comes from IDP_SMTP_PASSWORD, never from config.toml
    from_address: str = "Compte scolaire <ne-pas-repondre@localhost>"
    timeout_seconds: int = 10

    def __post_init__(self) -> None:
        if self.backend not in ("outbox", "smtp", "memory"):
            raise ConfigurationError(f"[mail] backend : {self.backend!r} inconnu (outbox, smtp ou memory)")
        if self.security not in ("starttls", "tls", "none"):
            raise ConfigurationError(f"[mail] security : {self.security!r} inconnu (starttls, tls ou none)")


@dataclass(frozen=True)
class SmsSettings:
    backend: str = "outbox"  # outbox (development) | http (gateway) | memory (unit tests)
    url: str = ""  # the gateway's endpoint; its bearer token comes from IDP_SMS_TOKEN
    sender: str = ""
    timeout_seconds: int = 5
    retries: int = 2
    backoff_ms: int = 500
    hourly_budget: int = 500  # SMS per hour for the codes that let families in (SMS pumping breaker)
    account_hourly_budget: int = 100  # SMS per hour for « Mon compte » phone changes: a budget of their own
    allowed_regions: tuple[str, ...] = ("FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF")
    default_region: str = "FR"

    def __post_init__(self) -> None:
        if self.backend not in ("outbox", "http", "memory"):
            raise ConfigurationError(f"[sms] backend : {self.backend!r} inconnu (outbox, http ou memory)")


@dataclass(frozen=True)
class DeliverySettings:
    background: bool = True  # a thread per process sends queued messages; false: after each answer
    poll_seconds: int = 5
    max_attempts: int = 5  # a message the gateway could not take (timeout, 5xx) is tried again later …
    retry_seconds: int = 30  # … after 30 s, then 60, 120, 240: within the SMS code's 30 minutes


@dataclass(frozen=True)
class ActivationSettings:
    code_ttl_minutes: int = 30
    email_code_ttl_minutes: int = 15
    code_attempts: int = 5
    sends_per_transaction: int = 3
    resend_cooldown_seconds: int = 60
    messages_per_recipient_per_day: int = 5
    starts_per_ip_per_hour: int = 10
    contact_codes_per_account_per_day: int = 5  # « Mon compte »: codes to a new number (or address) per account
    transaction_ttl_minutes: int = 60
    birthdate_failures: int = 3
    provisional_valid_days: int = 92
    email_link_ttl_hours: int = 24


@dataclass(frozen=True)
class StaffSettings:
    """The school staff console (``/etablissement``)."""

    idle_minutes: int = 15
    absolute_hours: int = 10
    enrolment_ttl_hours: int = 72
    help_requests_per_ip_per_hour: int = 5


FEDERATION_SCOPE = ("openid", "given_name", "family_name", "birthdate", "gender", "birthplace", "birthcountry",
                    "email", "preferred_username")


@dataclass(frozen=True)
class FederationSettings:
    """The upstream FranceConnect-style provider; every endpoint pinned here, never discovered (SECURITY F04).
    The client secret comes from IDP_FEDERATION_CLIENT_SECRET or keys/federation-client.secret."""

    enabled: bool = False
    name: str = "FranceConnect"
    issuer: str = ""
    authorization_endpoint: str = ""
    token_endpoint: str = ""
    userinfo_endpoint: str = ""
    end_session_endpoint: str = ""
    jwks_uri: str = ""
    client_id: str = ""
    scopes: tuple[str, ...] = FEDERATION_SCOPE
    acr_values: str = "eidas1"
    algorithms: tuple[str, ...] = ("ES256", "RS256")
    timeout_seconds: int = 5
    state_ttl_minutes: int = 10
    clock_skew_seconds: int = 30
    jwks_refetch_seconds: int = 60
    breaker_failures: int = 3
    breaker_open_seconds: int = 30

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        from urllib.parse import urlsplit

        if not self.issuer or not self.client_id:
            raise ConfigurationError("[federation] issuer et client_id sont obligatoires quand enabled = true")
        origin = urlsplit(self.issuer)[:2]
        for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "end_session_endpoint",
                     "jwks_uri"):
            value = getattr(self, name)
            if not value or urlsplit(value)[:2] != origin:
                raise ConfigurationError(f"[federation] {name} : adresse absente ou hors de l'origine de "
                                         f"l'émetteur {self.issuer} (points d'accès épinglés, SECURITY F04)")
        unknown = [a for a in self.algorithms if a not in ("ES256", "RS256", "ES384", "RS384", "PS256")]
        if unknown or not self.algorithms:
            raise ConfigurationError(f"[federation] algorithms : {unknown[0] if unknown else 'vide'} refusé")
        if "openid" not in self.scopes:
            raise ConfigurationError("[federation] scopes : « openid » est obligatoire")


@dataclass(frozen=True)
class BrandSettings:
    """The header's brand block (DSFR): an operator who is not a State service sets ``state_logo = false``."""

    #: Show the « République française » Marianne block (reserved to State services by the DSFR's terms of use).
    state_logo: bool = True
    #: The lines under the Marianne (the ministry line), one per list item.
    logo_lines: tuple[str, ...] = ("Ministère", "de l'Éducation", "nationale")
    #: The line under the service name in the header (empty: none).
    tagline: str = "Le compte des parents et des élèves"


@dataclass(frozen=True)
class I18nSettings:
    """The languages families can choose; the first is the default when the browser asks for none of them."""

    languages: tuple[str, ...] = ("fr", "en", "ar", "tr", "pt", "es")
    #: How long the chosen language is remembered in its cookie.
    cookie_days: int = 365

    def __post_init__(self) -> None:
        if not self.languages:
            raise ConfigurationError("[i18n] languages : au moins une langue")


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    keys: KeySettings = field(default_factory=KeySettings)
    session: SessionSettings = field(default_factory=SessionSettings)
    authn: AuthnSettings = field(default_factory=AuthnSettings)
    passwords: PasswordSettings = field(default_factory=PasswordSettings)
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    register: RegisterSettings = field(default_factory=RegisterSettings)
    protocols: ProtocolSettings = field(default_factory=ProtocolSettings)
    caches: CacheSettings = field(default_factory=CacheSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    sms: SmsSettings = field(default_factory=SmsSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    activation: ActivationSettings = field(default_factory=ActivationSettings)
    federation: FederationSettings = field(default_factory=FederationSettings)
    staff: StaffSettings = field(default_factory=StaffSettings)
    brand: BrandSettings = field(default_factory=BrandSettings)
    i18n: I18nSettings = field(default_factory=I18nSettings)
    #: SMTP password (``IDP_SMTP_PASSWORD``) and SMS gateway token (``IDP_SMS_TOKEN``); never from config.toml.
    smtp_password: str = field(default="", repr=False)
    sms_token: str = field(default="", repr=False)
    #: The upstream provider's client secret (``IDP_FEDERATION_CLIENT_SECRET`` or keys/federation-client.secret).
    federation_client_secret: str = field(default="", repr=False)
    #: Bearer token of the Prometheus scraper (``IDP_METRICS_TOKEN`` or keys/metrics.token); empty: no /metrics.
    metrics_token: str = field(default="", repr=False)
    #: Directory relative paths are resolved against (the config file's directory).
    root: str = "."
    #: Secret key for signing cookies and hashing codes; never from config.toml.
    secret_key: str = field(default="", repr=False)
    #: Salt of pairwise subject ids and INE hashes; must never change once accounts exist.
    pairwise_salt: str = field(default="", repr=False)

    def path(self, relative: str) -> Path:
        """Resolve a path from the settings against the configuration's directory."""
        p = Path(relative)
        return p if p.is_absolute() else Path(self.root) / p

    @property
    def https(self) -> bool:
        """Whether the public base URL is served over TLS (decides the ``__Host-`` cookie prefix)."""
        return self.server.base_url.startswith("https://")


_SECTION_NAMES = tuple(f.name for f in dataclasses.fields(Settings)
                       if f.name not in ("root", "secret_key", "pairwise_salt", "smtp_password", "sms_token",
                                         "federation_client_secret", "metrics_token"))


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Settings)
    return {name: hints[name] for name in _SECTION_NAMES}


def _coerce(value: Any, expected: Any, where: str) -> Any:
    """Check a TOML value (or convert an environment string) against the declared type."""
    if isinstance(value, str) and expected is not str:
        value = _from_env_string(value, expected, where)
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    origin = typing.get_origin(expected)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigurationError(f"{where}: une liste est attendue")
        (item_type, *_) = typing.get_args(expected) or (str,)
        return tuple(_coerce(v, item_type, where) for v in value)
    if isinstance(expected, types.UnionType):
        expected = typing.get_args(expected)[0]
    if expected is int and isinstance(value, bool):
        raise ConfigurationError(f"{where}: un entier est attendu, pas {value!r}")
    if not isinstance(value, expected):
        raise ConfigurationError(f"{where}: type {expected.__name__} attendu, {type(value).__name__} trouvé ({value!r})")
    return value


def _from_env_string(value: str, expected: Any, where: str) -> Any:
    if expected is bool:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigurationError(f"{where}: booléen attendu (true/false), {value!r} trouvé")
    if expected is int:
        try:
            return int(value)
        except ValueError:
            raise ConfigurationError(f"{where}: entier attendu, {value!r} trouvé") from None
    if expected is float:
        try:
            return float(value)
        except ValueError:
            raise ConfigurationError(f"{where}: nombre attendu, {value!r} trouvé") from None
    if typing.get_origin(expected) in (tuple, list):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _build_section(name: str, cls: type, values: dict[str, Any], source: str) -> Any:
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ConfigurationError(f"{source}: clé inconnue [{name}] {unknown[0]}")
    kwargs = {k: _coerce(v, hints[k], f"{source}: [{name}] {k}") for k, v in values.items()}
    return cls(**kwargs)


def _env_overrides(environ: typing.Mapping[str, str]) -> dict[str, dict[str, str]]:
    overrides: dict[str, dict[str, str]] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or key in RESERVED_ENV or key.startswith(TOOLING_PREFIXES):
            continue
        rest = key[len(ENV_PREFIX):]
        if "__" not in rest:
            raise ConfigurationError(f"variable d'environnement inconnue {key} (forme attendue IDP_SECTION__CLE)")
        section, _, name = rest.partition("__")
        overrides.setdefault(section.lower(), {})[name.lower()] = value
    return overrides


def _read_secret(root: Path, keys_dir: str, environ: typing.Mapping[str, str], env: str, filename: str) -> str:
    if environ.get(env):
        return environ[env]
    path = Path(keys_dir) if Path(keys_dir).is_absolute() else root / keys_dir
    secret_file = path / filename
    if secret_file.exists():
        return secret_file.read_text(encoding="utf-8").strip()
    return ""


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: typing.Mapping[str, str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Settings:
    """Read the configuration file and the environment into frozen ``Settings``."""
    environ = os.environ if environ is None else environ
    if config_path is None:
        config_path = environ.get("IDP_CONFIG") or "config.toml"
    path = Path(config_path)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path}: TOML invalide ({exc})") from None
    elif environ.get("IDP_CONFIG") or str(config_path) != "config.toml":
        raise ConfigurationError(f"fichier de configuration introuvable : {path}")
    root = path.resolve().parent
    sections = _section_types()
    for name in data:
        if name not in sections:
            raise ConfigurationError(f"{path}: section inconnue [{name}]")
        if not isinstance(data[name], dict):
            raise ConfigurationError(f"{path}: [{name}] doit être une section")
    merged = {name: dict(data.get(name, {})) for name in sections}
    for name, values in _env_overrides(environ).items():
        if name not in sections:
            raise ConfigurationError(f"environnement : section inconnue IDP_{name.upper()}__…")
        merged[name].update(values)
    for name, values in (overrides or {}).items():
        merged[name].update(values)
    built = {name: _build_section(name, cls, merged[name], str(path)) for name, cls in sections.items()}
    keys_dir = built["keys"].directory
    secret = _read_secret(root, keys_dir, environ, "IDP_SECRET_KEY", "secret.key")
    salt = _read_secret(root, keys_dir, environ, "IDP_PAIRWISE_SALT", "pairwise.key")
    federation_secret = _read_secret(root, keys_dir, environ, "IDP_FEDERATION_CLIENT_SECRET",
                                     "federation-client.secret")
    metrics_token = _read_secret(root, keys_dir, environ, "IDP_METRICS_TOKEN", "metrics.token")
    return Settings(**built, root=str(root), secret_key=secret, pairwise_salt=salt,
                    federation_client_secret=federation_secret, metrics_token=metrics_token,
                    smtp_password=environ.get("IDP_SMTP_PASSWORD", ""), sms_token=environ.get("IDP_SMS_TOKEN", ""))
