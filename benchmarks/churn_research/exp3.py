from exp1 import *
from scipy.optimize import brentq
from scipy.special import logit, expit
for name, unit, H, O in [("sample","W",90,"1997-09-30"), ("master","D",90,"1997-09-30"), ("sample","W",90,"1997-12-02"), ("sample","W",90,"1998-01-31")]:
    O = pd.Timestamp(O)
    Xo, yo, _, _ = examples(name, O, unit, H)
    p = cur(name, unit, H, O, Xo)
    y = yo.to_numpy()
    # oracle intercept shift
    s = brentq(lambda d: expit(logit(p) + d).mean() - y.mean(), -3, 3)
    po = expit(logit(p) + s)
    # rate in training window and recent windows
    rates = {}
    for h in (30, 60, 90):
        _, yy, _, _ = examples(name, O - pd.Timedelta(days=h), unit, h); rates[h] = round(yy.mean(), 3)
    print(name, O.date(), f"actual={y.mean():.3f} pred={p.mean():.3f} bg_pno={Xo.p_no_purchase_horizon.mean():.3f} ece={expected_calibration_error(y,p):.4f} oracle_shift={s:.3f} ece_oracle={expected_calibration_error(y,po):.4f} recent_rates={rates}")
