"""Which pairs ``(x, z)`` each discriminator sees: (3), (5) and (6).

One function per sampling scheme, written once and used both by the Gaussian
world (chapters 3-4) and by the neural model (chapter 6 on). Each takes real
data ``x``, prior codes ``z``, and the two stochastic maps
``encode(x) ~ q_phi(z|x)`` and ``decode(z) ~ p_theta(x|z)``, and returns the
positive and the negative class, each a tuple ``(x, z)``.
"""


def f_pairs(x, z, encode, decode):
    """(5), the x-side: positives ``x ~ q(x), z ~ q_phi(z|x)``; negatives are
    synthetic data with their own codes, ``z' ~ p(z), x ~ p_theta(x|z'), z ~ q_phi(z|x)``.
    Optimum: ``f* = log q(x) - log p_theta(x)``."""
    x_fake = decode(z)
    return (x, encode(x)), (x_fake, encode(x_fake))


def h_pairs(x, z, encode, decode):
    """(6), the z-side: positives ``z ~ p(z), x ~ p_theta(x|z)``; negatives are
    encoded data with their decodings, ``x' ~ q(x), z ~ q_phi(z|x'), x ~ p_theta(x|z)``.
    Optimum: ``h* = log p(z) - log q_phi(z)``."""
    z_real = encode(x)
    return (decode(z), z), (decode(z_real), z_real)


def ali_pairs(x, z, encode, decode):
    """ALI (3): positives from the encoder joint ``q_phi(x, z)``, negatives from
    the decoder joint ``p_theta(x, z)``. Optimum: ``log q_phi(x,z) - log p_theta(x,z)``."""
    return (x, encode(x)), (decode(z), z)
