import sys, time
import numpy as np, pandas as pd
from harness import *
from custscore.training.churn import CHURN_FEATURES, ChurnClassifier, _signed_log1p
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.ensemble import HistGradientBoostingClassifier

def logit_model(C=1.0):
    return make_pipeline(FunctionTransformer(_signed_log1p), StandardScaler(), LogisticRegression(C=C, max_iter=2000))

def add_feats(X, h):
    X = X.copy()
    X["log_h"] = np.log(h)
    X["dsl_over_T"] = X["days_since_last_purchase"] / np.maximum(X["T_days"], 1)
    X["dsl_over_ipt"] = X["days_since_last_purchase"] / np.maximum(X["ipt_mean_days"], 1)
    X["h_over_ipt"] = h / np.maximum(X["ipt_mean_days"], 1)
    return X

def run(name, unit, H, origins, cands):
    res = {}
    rows = []
    for O in origins:
        O = pd.Timestamp(O)
        Xo, yo, _, _ = examples(name, O, unit, H)
        sc = {"bg_exp": -Xo["expected_purchases_horizon"].to_numpy(), "bg_pno": Xo["p_no_purchase_horizon"].to_numpy()}
        for cname, f in cands.items():
            t = time.time()
            sc[cname] = f(name, unit, H, O, Xo)
        df = pd.DataFrame(sc); df["y"] = yo.to_numpy(); df["cid"] = Xo.index; df["origin"] = O
        rows.append(df)
        print(O.date(), " ".join(f"{k}={roc_auc(df.y, df[k]):.4f}" for k in sc), flush=True)
    P = pd.concat(rows)
    keys = [c for c in P.columns if c not in ("y", "cid", "origin")]
    tab = bootstrap_table(P.y.to_numpy(), {k: P[k].to_numpy() for k in keys}, reference="bg_exp", n_boot=200, seed=0, groups=P.cid.to_numpy())
    t = tab[tab.metric == "auc"][["score", "estimate", "diff", "diff_low", "diff_high"]]
    print(f"POOLED {name} {unit} H={H}"); print(t.to_string(index=False))
    return P

def cur(name, unit, H, O, Xo, C=1.0):
    X, y, _, _ = examples(name, O - pd.Timedelta(days=H), unit, H)
    m = logit_model(C).fit(X[list(CHURN_FEATURES)].to_numpy(float), y)
    return m.predict_proba(Xo[list(CHURN_FEATURES)].to_numpy(float))[:, 1]

def multi_h(hs, feats=None, extra=True, C=1.0, model="lr"):
    def f(name, unit, H, O, Xo):
        Xs, ys = [], []
        for h in hs(H):
            X, y, _, _ = examples(name, O - pd.Timedelta(days=h), unit, h)
            Xs.append(add_feats(X, h) if extra else X); ys.append(y)
        X = pd.concat(Xs); y = pd.concat(ys)
        cols = list(feats or (list(CHURN_FEATURES) + (["log_h", "dsl_over_T", "dsl_over_ipt", "h_over_ipt"] if extra else [])))
        Xq = add_feats(Xo, H) if extra else Xo
        if model == "lr":
            m = logit_model(C).fit(X[cols].to_numpy(float), y)
        else:
            m = HistGradientBoostingClassifier(max_iter=200, max_leaf_nodes=15, learning_rate=0.05).fit(X[cols].to_numpy(float), y)
        return m.predict_proba(Xq[cols].to_numpy(float))[:, 1]
    return f

if __name__ == "__main__":
    which = sys.argv[1]
    cands = {"cur": cur,
             "mh_H": multi_h(lambda H: [H]),
             "mh_4": multi_h(lambda H: sorted({30, 60, 90, H})),
             "mh_2": multi_h(lambda H: sorted({H // 2, H})),
             "mh_short": multi_h(lambda H: [30, 60, 90] if H > 90 else [30, 60, 90]),
            }
    if which == "m180":
        run("master", "D", 180, ["1997-09-03", "1997-11-02", "1998-01-01"], cands)
    elif which == "m90":
        run("master", "D", 90, ["1997-12-02", "1998-01-31", "1998-04-01"], cands)
    elif which == "s90":
        run("sample", "W", 90, ["1997-12-02", "1998-01-31", "1998-04-01"], cands)
    elif which == "s90b":
        run("sample", "W", 90, ["1997-09-30"], cands)
    elif which == "m180b":
        run("master", "D", 180, ["1997-09-30"], cands)
