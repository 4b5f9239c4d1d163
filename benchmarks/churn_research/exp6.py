import sys
from exp1 import *
from exp2 import summarize, args
from custscore.training.metrics import log_loss
mh = multi_h(lambda H: sorted({H // 2, H}), C=0.01)
c1 = lambda *a: cur(*a, C=0.01)
first = pd.Timestamp("1997-01-01")
for w in sys.argv[1].split(","):
    name, unit, H, origins = args[w]
    for O in origins:
        O = pd.Timestamp(O); R = O - pd.Timedelta(days=H)
        if R - pd.Timedelta(days=H) <= first + pd.Timedelta(days=14):
            print(w, O.date(), "validation infeasible"); continue
        Xr, yr, _, _ = examples(name, R, unit, H)
        out = []
        for cn, f in (("cur001", c1), ("mh", mh)):
            p = f(name, unit, H, R, Xr)
            out.append(f"{cn}: auc={roc_auc(yr, p):.4f} ll={log_loss(yr, p):.4f} ece={expected_calibration_error(yr, p):.4f} brier={((p-yr)**2).mean():.4f}")
        print(w, O.date(), "VALIDATION at", R.date(), " | ".join(out), flush=True)
