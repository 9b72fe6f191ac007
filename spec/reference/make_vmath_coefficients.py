"""The coefficients of vm_erff (core/cpu/vmath.h): least-squares fits, at
Chebyshev points, to the exact erf and erfc (mpmath, 30 digits).

    /usr/bin/python3 spec/reference/make_vmath_coefficients.py

Prints the coefficients, highest degree first, as vm_erff's Horner
schemes take them, and each fit's largest error in float32 arithmetic
(units of 2^-24, no fma, so a little above what vm_erff reaches):
  - |x| < 0.921875: erf(x) = x + x P(x^2), P of degree 5;
  - 0.921875 <= |x| < 3.95: erf(|x|) = 1 - R(u), u = |x| - 0.921875,
    R = N / D of degrees 6 and 6 (D(0) = 1) fitted to erfc by linearised
    least squares (each pass weighted by 1 / D of the last, and towards
    the largest errors: close to minimax).  A rational function needs no
    exp (GELU's erf form ran at half PyTorch's speed with one), and in u
    from the left end its Horner schemes do not cancel.
Beyond 3.95, erf is 1 in float32.
"""
import math

import mpmath
import numpy as np

mpmath.mp.dps = 30
SPLIT, TOP = 0.921875, 3.95


def cheb(lo, hi, n=4000):
    return np.cos(np.linspace(0, np.pi, n)) * (hi - lo) / 2 + (hi + lo) / 2


def horner(cf, v):
    p = np.float32(0)
    for k in cf:
        p = np.float32(p * v + k)
    return p


def main():
    xs = cheb(0, SPLIT)
    xs = xs[xs > 1e-4]
    f = np.array([float(mpmath.erf(x) / x - 1) for x in xs])
    cp = np.float32(np.linalg.lstsq(np.vander(xs * xs, 6), f, rcond=None)[0])
    err = max(abs(float(np.float32(np.float32(x) + np.float32(x) * horner(cp, np.float32(np.float32(x) * np.float32(x)))))
                  - float(mpmath.erf(x))) / float(mpmath.erf(x)) for x in xs[::3])
    print("P", [float(k) for k in cp], "max %.2f" % (err / 2 ** -24))

    ts = cheb(SPLIT, TOP)
    f = np.array([float(mpmath.erfc(t)) for t in ts])
    us = ts - SPLIT
    w, best = np.ones_like(us), None
    for it in range(30):
        a = np.hstack([np.vander(us, 7), -f[:, None] * np.vander(us, 7)[:, :-1]])
        sol = np.linalg.lstsq(a * w[:, None], f * w, rcond=None)[0]
        cn, cd = sol[:7], np.append(sol[7:], 1.0)
        d = np.polyval(cd, us)
        e = np.abs(np.polyval(cn, us) / d - f)
        if best is None or e.max() < best[0]:
            best = (e.max(), cn, cd)
        w = 1 / np.abs(d) * ((1 + 20 * (e / e.max()) ** 2) if it > 3 else 1)
    cn, cd = np.float32(best[1]), np.float32(best[2])
    err = max(abs(float(np.float32(1 - np.float32(horner(cn, np.float32(np.float32(t) - np.float32(SPLIT)))
                                                  / horner(cd, np.float32(np.float32(t) - np.float32(SPLIT))))))
                  - float(mpmath.erf(t))) for t in ts[::3])
    print("N", [float(k) for k in cn])
    print("D", [float(k) for k in cd], "max %.2f" % (err / 2 ** -24))


if __name__ == "__main__":
    main()
