import sys
from exp1 import *
from exp2 import summarize, args
from scipy.optimize import brentq
from scipy.special import logit, expit
mh = multi_h(lambda H: sorted({H // 2, H}), C=0.01)
first = pd.Timestamp("1997-01-01")
def shift_for(name, unit, H, O, s, model):
    """logit shift that makes a model fitted at O - s calibrated (in mean) on examples at O - H."""
    D = O - pd.Timedelta(days=s)
    R = O - pd.Timedelta(days=H)
    Xr, yr, _, _ = examples(name, R, unit, H)
    p = model(name, unit, H, R + pd.Timedelta(days=H - s) if False else O - pd.Timedelta(days=s), Xr)
    return brentq(lambda d: expit(logit(p) + d).mean() - yr.mean(), -5, 5)
def drift(model, s_of):
    def f(name, unit, H, O, Xo):
        s = s_of(H)
        p = model(name, unit, H, O, Xo)
        # model fitted as if the origin were O - s, scored at examples at O - H?  we need score examples at the
        # latest labelled date R = O - H using a model whose training data end at R: origin' = R.
        R = O - pd.Timedelta(days=H)
        if R - pd.Timedelta(days=H) <= first + pd.Timedelta(days=7):
            return p
        Xr, yr, _, _ = examples(name, R, unit, H)
        pr = model(name, unit, H, R, Xr)
        d = brentq(lambda d: expit(logit(pr) + d).mean() - yr.mean(), -5, 5)
        return expit(logit(p) + d)
    return f
cands = {"mh": mh, "mh_drift": drift(mh, lambda H: H), "cur001": lambda *a: cur(*a, C=0.01),
         "cur001_drift": drift(lambda *a: cur(*a, C=0.01), lambda H: H)}
if __name__ == "__main__":
  for w in sys.argv[1].split(","):
    P = run(*args[w], cands); summarize(P)
