"""The quick/full profile switch, one mechanism for the whole book.

Every chapter runs the same code in two sizes:

* ``quick`` (the default): CPU, minutes, small data. ``make test`` and CI use it.
* ``full``: GPU, the paper's scale.

The profile is chosen by one environment variable, ``ASVAE_PROFILE``, read here
and nowhere else. A chapter asks for sizes with :func:`pick`::

    n_steps = pick(quick=300, full=20_000)

Run a chapter in the full profile with ``ASVAE_PROFILE=full make book`` or by
setting the variable before starting JupyterLab.

**The smoke test** (``make smoke-full``): ``ASVAE_SMOKE=1`` with ``ASVAE_PROFILE=full``
runs the full profile's code (``profile()`` still says ``"full"``, so every full-profile
branch is taken, with the full networks) but with its step and sample counts capped,
so that a CPU gets through every chapter in minutes and an error in a full-profile
code path shows up before a GPU reader meets it. A size that needs a cap says so::

    n_steps = pick(quick=300, full=20_000, smoke=20)

Nothing measured in the smoke test means anything: it trains for a handful of steps,
on fake images where the real data is not at hand (:func:`asvae_lib.data.load`), so a
chapter's checks of claims about *trained* models are skipped there (:func:`smoke`).
"""
import os

ENV_VAR = "ASVAE_PROFILE"
PROFILES = ("quick", "full")
SMOKE_VAR = "ASVAE_SMOKE"


def profile() -> str:
    """The active profile: ``"quick"`` unless ``ASVAE_PROFILE`` says otherwise."""
    name = os.environ.get(ENV_VAR, "quick").strip().lower()
    if name not in PROFILES:
        raise ValueError(
            f"{ENV_VAR}={name!r} is not a profile; set it to one of {PROFILES} "
            f"(or unset it for the quick profile)."
        )
    return name


def smoke() -> bool:
    """Whether this is the full profile's smoke test: ``ASVAE_SMOKE=1`` (unset, empty or ``0``: no).

    It caps the full profile only: with the quick profile it is an error, as is any other value."""
    value = os.environ.get(SMOKE_VAR, "").strip()
    if value in ("", "0"):
        return False
    if value != "1":
        raise ValueError(f"{SMOKE_VAR}={value!r}: set it to 1 for the full profile's smoke test, "
                         f"or to 0 (or unset it) for a normal run.")
    if profile() != "full":
        raise ValueError(f"{SMOKE_VAR}=1 caps the full profile's step counts: set {ENV_VAR}=full too "
                         f"(or unset {SMOKE_VAR}; the quick profile is small already).")
    return True


_smoke = smoke   # pick's argument ``smoke`` hides the function inside pick


def pick(quick, full, smoke=None):
    """``quick`` or ``full`` according to the active profile; in the smoke test ``smoke``
    where it is given, else ``full``."""
    if _smoke():   # (which also refuses a bad ASVAE_SMOKE)
        return full if smoke is None else smoke
    return quick if profile() == "quick" else full


def trained_enough(what: str) -> bool:
    """Whether to check a claim about trained models (``what``): always, except in the smoke
    test, whose handful of training steps (on fake images, where the real ones are not here)
    cannot bear one out; there it says that the check is skipped and returns False::

        if trained_enough("every trained model beats the per-pixel Gaussian"):
            assert ...
    """
    if not smoke():
        return True
    print(f"SMOKE TEST, not checked: {what}")
    return False
