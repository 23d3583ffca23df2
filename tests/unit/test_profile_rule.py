"""The core rule "the profile chosen is the profile that logs in" (``idp.core.authn.policy.check_profile``)."""

from __future__ import annotations

import pytest

from idp.core.accounts.model import Account, AccountState, Profile
from idp.core.authn.policy import check_profile
from idp.errors import WrongProfile


def account(profile: Profile) -> Account:
    return Account(id=1, public_id="p", identifier="s.dupuis1", profile=profile, state=AccountState.ACTIVE,
                   family_name="Dupuis", given_names="Sandrine", password_hash=None)


@pytest.mark.parametrize("profile", list(Profile))
def test_the_chosen_profile_passes(profile: Profile) -> None:
    check_profile(account(profile), profile)


@pytest.mark.parametrize(("own", "chosen"), [(Profile.PARENT, Profile.STUDENT), (Profile.STUDENT, Profile.PARENT)])
def test_the_other_profile_is_refused_naming_the_accounts_own(own: Profile, chosen: Profile) -> None:
    with pytest.raises(WrongProfile) as refused:
        check_profile(account(own), chosen)
    assert refused.value.profile is own and refused.value.code == "wrong_profile"


def test_the_screens_words_for_the_profiles() -> None:
    assert Profile.from_choice("parent") is Profile.PARENT and Profile.from_choice("eleve") is Profile.STUDENT
    assert Profile.from_choice("student") is None and Profile.from_choice("") is None
    assert [p.choice for p in Profile] == ["parent", "eleve"]
