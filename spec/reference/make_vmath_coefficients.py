"""The polynomial coefficients of vm_erff (core/cpu/vmath.h): least-squares
fits, at Chebyshev points, to the exact erf (mpmath, 30 digits).

    /usr/bin/python3 spec/reference/make_vmath_coefficients.py

Prints the coefficients, highest degree first, as vm_erff's Horner
schemes take them, and each fit's largest error in float32 arithmetic
(units of 2^-24, no fma, so a little above what vm_erff reaches):
  - |x| < 0.921875: erf(x) = x + x P(x^2), P of degree 5;
  - 0.921875 <= |x| < 3.95: erf(|x|) = 1 - exp(Q(|x|)), Q of degree 7
    fitted to log erfc, weighted by erfc (the error that reaches erf).
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
    g = np.array([float(mpmath.log(mpmath.erfc(t))) for t in ts])
    w = np.array([float(mpmath.erfc(t)) for t in ts])
    cq = np.float32(np.linalg.lstsq(np.vander(ts, 8) * w[:, None], g * w, rcond=None)[0])
    err = max(abs(1 - math.exp(float(horner(cq, np.float32(t)))) - float(mpmath.erf(t)))
              for t in ts[::5])
    print("Q", [float(k) for k in cq], "max %.2f" % (err / 2 ** -24))


if __name__ == "__main__":
    main()
