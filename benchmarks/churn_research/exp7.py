import sys
from exp1 import *
from exp2 import summarize, args
from custscore.training.calibration import ProbabilityCalibrator
def mh_recal(hs, C=0.01, method="sigmoid", extra=True):
    def f(name, unit, H, O, Xo):
        Xs, ys = [], []
        for h in hs(H):
            X, y, _, _ = examples(name, O - pd.Timedelta(days=h), unit, h)
            Xs.append(add_feats(X, h) if extra else X); ys.append(y)
        cols = list(CHURN_FEATURES) + (["log_h", "dsl_over_T", "dsl_over_ipt", "h_over_ipt"] if extra else [])
        m = logit_model(C).fit(pd.concat(Xs)[cols].to_numpy(float), pd.concat(ys))
        XH = Xs[-1]; yH = ys[-1]
        cal = ProbabilityCalibrator(method=method).fit(m.predict_proba(XH[cols].to_numpy(float))[:, 1], yH.to_numpy())
        Xq = add_feats(Xo, H) if extra else Xo
        return cal.transform(m.predict_proba(Xq[cols].to_numpy(float))[:, 1])
    return f
cands = {"mh": multi_h(lambda H: sorted({H // 2, H}), C=0.01),
         "mh_sig": mh_recal(lambda H: sorted({H // 2, H})),
         "mh23_sig": mh_recal(lambda H: sorted({2 * H // 3, H})),
         "mhC1_sig": mh_recal(lambda H: sorted({H // 2, H}), C=1.0),
         "mh_nx_sig": mh_recal(lambda H: sorted({H // 2, H}), extra=False),
         "c1_sig": mh_recal(lambda H: [H], extra=False),
         }
if __name__ == "__main__":
  for w in sys.argv[1].split(","):
    P = run(*args[w], cands); summarize(P)
