"""Staff console fixtures: messages delivered on demand, a register of two schools."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from staff_support import Authenticator, Register, build_register  # noqa: E402

from idp.settings import DeliverySettings, Settings  # noqa: E402
from idp.wiring import Services  # noqa: E402


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return dataclasses.replace(base_settings, delivery=DeliverySettings(background=False))


@pytest.fixture
def register(services: Services) -> Register:
    return build_register(services)


@pytest.fixture
def authenticator() -> Authenticator:
    return Authenticator("idp.test", "https://idp.test")
