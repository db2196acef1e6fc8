"""The quick/full profile switch, one mechanism for the whole book.

Every chapter runs the same code in two sizes:

* ``quick`` (the default): CPU, minutes, small data. ``make test`` and CI use it.
* ``full``: GPU, the paper's scale.

The profile is chosen by one environment variable, ``ASVAE_PROFILE``, read here
and nowhere else. A chapter asks for sizes with :func:`pick`::

    n_steps = pick(quick=300, full=20_000)

Run a chapter in the full profile with ``ASVAE_PROFILE=full make book`` or by
setting the variable before starting JupyterLab.
"""
import os

ENV_VAR = "ASVAE_PROFILE"
PROFILES = ("quick", "full")


def profile() -> str:
    """The active profile: ``"quick"`` unless ``ASVAE_PROFILE`` says otherwise."""
    name = os.environ.get(ENV_VAR, "quick").strip().lower()
    if name not in PROFILES:
        raise ValueError(
            f"{ENV_VAR}={name!r} is not a profile; set it to one of {PROFILES} "
            f"(or unset it for the quick profile)."
        )
    return name


def pick(quick, full):
    """Return ``quick`` or ``full`` according to the active profile."""
    return quick if profile() == "quick" else full
