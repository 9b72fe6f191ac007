#!/usr/bin/python3
"""Reference values for spec/train/metrics_spec.lua (ember.metrics), from
scikit-learn.

Regenerate (from the repository root; scikit-learn in a throwaway virtual
environment over the system's Python):

    /usr/bin/python3 -m venv --system-site-packages /tmp/venv-sk
    /tmp/venv-sk/bin/pip install scikit-learn
    /tmp/venv-sk/bin/python spec/reference/make_metrics_reference.py

It writes spec/reference/metrics_values.lua; the spec only reads that file.

Inputs are deterministic: score i (row-major) of a case with phase p is
sin(i*0.37 + p), rounded to one decimal where a case has ties=true (tied
scores: top-k's and AUC's tie rules).  Targets are 1-based classes (Ember's)
and given to scikit-learn less one; binary cases have 0/1 targets and
scores (N).  scikit-learn's defaults otherwise: zero_division "warn" (0,
with a warning), macro averages over the labels present in y_true or
y_pred.
"""
import math
import warnings

import numpy as np
import sklearn
from sklearn import metrics as skm

import luavalues


def scores(n, c, phase, ties):
    v = [math.sin(i * 0.37 + phase) for i in range(n * c)]
    if ties:
        v = [round(x, 1) for x in v]
    return [v[r * c:(r + 1) * c] for r in range(n)]


def classes(n, c, phase):
    # 1-based, skewed so that some classes are rare
    return [1 + int(abs(math.sin(i * 1.3 + phase)) * c * 0.999) for i in range(n)]


def prf(y, p, **kw):
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for avg in ("macro", "micro", "weighted"):
            out[avg] = [skm.precision_score(y, p, average=avg, **kw),
                        skm.recall_score(y, p, average=avg, **kw),
                        skm.f1_score(y, p, average=avg, **kw)]
        if len(set(y) | set(p)) <= 2:
            out["binary"] = [skm.precision_score(y, p, average="binary", **kw),
                             skm.recall_score(y, p, average="binary", **kw),
                             skm.f1_score(y, p, average="binary", **kw)]
    return {k: [float(x) for x in v] for k, v in out.items()}


def multiclass(name, n, c, phase, ties=False, tphase=0.5):
    s = scores(n, c, phase, ties)
    y = classes(n, c, tphase)
    y0 = [t - 1 for t in y]
    pred0 = [int(np.argmax(r)) for r in s]   # first maximum, as Ember's argmax
    case = {"name": name, "scores": s, "target": y, "num_classes": c,
            "prf": prf(y0, pred0),
            "confusion": skm.confusion_matrix(y0, pred0, labels=list(range(c))).tolist(),
            "top_k": {}}
    for k in range(1, c + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            case["top_k"][str(k)] = float(skm.top_k_accuracy_score(
                y0, np.array(s), k=k, labels=list(range(c))))
    return case


def binary(name, n, phase, ties=False, tphase=0.2):
    s = [math.sin(i * 0.37 + phase) * 0.5 + 0.5 for i in range(n)]
    if ties:
        s = [round(x, 1) for x in s]
    y = [1 if math.sin(i * 0.9 + tphase) + (s[i] - 0.5) > 0 else 0 for i in range(n)]
    pred = [1 if x > 0.5 else 0 for x in s]
    case = {"name": name, "scores": s, "target": y, "prf": prf(y, pred),
            "confusion": skm.confusion_matrix(y, pred, labels=[0, 1]).tolist()}
    if len(set(y)) == 2:
        case["auc"] = float(skm.roc_auc_score(y, s))
    return case


def labels_case(name, pred, target, c):
    p0, y0 = [p - 1 for p in pred], [t - 1 for t in target]
    return {"name": name, "pred": pred, "target": target, "num_classes": c,
            "prf": prf(y0, p0),
            "confusion": skm.confusion_matrix(y0, p0, labels=list(range(c))).tolist()}


CASES = {
    "multiclass": [
        multiclass("4 classes", 40, 4, 0.3),
        multiclass("4 classes, tied scores", 40, 4, 1.1, ties=True),
        multiclass("6 classes, some never predicted", 25, 6, 2.0, tphase=1.7),
    ],
    "binary": [
        binary("binary", 30, 0.4),
        binary("binary, tied scores", 30, 1.3, ties=True),
        binary("binary, no positive predicted", 10, 4.0),
    ],
    "labels": [
        # class 3 is never predicted (precision 0/0), class 4 never a target
        labels_case("labels with zero divisions", [1, 2, 2, 4, 1, 2], [1, 2, 3, 3, 1, 1], 4),
        labels_case("binary labels, nothing right", [1, 1, 1], [2, 2, 2], 2),
    ],
}

OUT = "spec/reference/metrics_values.lua"
luavalues.write(OUT, CASES, "make_metrics_reference.py",
                notes=["with scikit-learn " + sklearn.__version__], lines=2)
# luavalues's regenerate line names the system Python (torch's); this
# script needs the virtual environment with scikit-learn
with open(OUT) as f:
    text = f.read()
text = text.replace("-- Regenerate: OPENBLAS_CORETYPE=Haswell /usr/bin/python3 ",
                    "-- Regenerate: /tmp/venv-sk/bin/python ", 1)
with open(OUT, "w") as f:
    f.write(text)
