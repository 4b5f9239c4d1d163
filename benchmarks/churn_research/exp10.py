import sys
from exp1 import *
from exp2 import summarize, args
from custscore.training.churn import CHURN_FEATURES
from custscore.training.pipeline import churn_examples
from custscore.config import TrainConfig
from custscore.training.churn import ChurnClassifier
MONO = {"frequency": -1, "days_since_last_purchase": 1, "n_purchases_30d": -1, "n_purchases_90d": -1,
        "n_purchases_365d": -1, "p_alive": -1, "expected_purchases_horizon": -1, "p_no_purchase_horizon": 1,
        "purchase_rate_per_year": -1, "days_since_last_over_tenure": 1, "days_since_last_over_ipt": 1}
def windows_of(name, unit, H, O):
    hs = [H] + ([2 * H // 3] if H >= 180 else [])
    out = []
    for h in hs:
        X, y, _, _ = examples(name, O - pd.Timedelta(days=h), unit, h); out.append((X, y))
    return out
def prod(name, unit, H, O, Xo):
    w = windows_of(name, unit, H, O)
    m = ChurnClassifier(calibration="sigmoid-latest").fit(pd.concat([a for a, _ in w]), pd.concat([b for _, b in w]), *w[0])
    return m.predict_proba(Xo)
def hgb_mono(name, unit, H, O, Xo):
    w = windows_of(name, unit, H, O)
    X = pd.concat([a for a, _ in w]); y = pd.concat([b for _, b in w])
    cst = [MONO.get(c, 0) for c in CHURN_FEATURES]
    m = HistGradientBoostingClassifier(max_iter=200, max_leaf_nodes=15, learning_rate=0.05, monotonic_cst=cst, random_state=0)
    m.fit(X[list(CHURN_FEATURES)].to_numpy(float), y)
    return m.predict_proba(Xo[list(CHURN_FEATURES)].to_numpy(float))[:, 1]
cands = {"prod": prod, "hgb_mono": hgb_mono}
if __name__ == "__main__":
  for w in sys.argv[1].split(","):
    P = run(*args[w], cands); summarize(P)
