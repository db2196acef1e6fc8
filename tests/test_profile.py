import pytest

from asvae_lib.profile import pick, profile


def test_quick_is_the_default(monkeypatch):
    monkeypatch.delenv("ASVAE_PROFILE", raising=False)
    assert profile() == "quick" and pick(quick=1, full=2) == 1


def test_full_profile(monkeypatch):
    monkeypatch.setenv("ASVAE_PROFILE", "FULL")
    assert pick(quick=1, full=2) == 2


def test_unknown_profile_says_what_to_do(monkeypatch):
    monkeypatch.setenv("ASVAE_PROFILE", "fast")
    with pytest.raises(ValueError, match="quick"):
        profile()
