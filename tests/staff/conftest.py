"""Staff console fixtures: messages delivered on demand, a register of two schools."""

from __future__ import annotations

import dataclasses

import pytest

from idp.settings import DeliverySettings, Settings
from idp.wiring import Services

from .staff_support import Authenticator, Register, build_register


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return dataclasses.replace(base_settings, delivery=DeliverySettings(background=False))


@pytest.fixture
def register(services: Services) -> Register:
    return build_register(services)


@pytest.fixture
def authenticator() -> Authenticator:
    return Authenticator("idp.test", "https://idp.test")
