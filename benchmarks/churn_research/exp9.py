from harness import *
from custscore.training.pipeline import churn_examples
from custscore.training.churn import ChurnClassifier
from custscore.training.metrics import bootstrap_table
O = pd.Timestamp("1997-09-30"); R = O - pd.Timedelta(days=90)
Xm, ym, _, _ = examples("master", R, "D", 90)
model = ChurnClassifier(calibration="sigmoid-latest").fit(Xm, ym, Xm, ym)
Xs, ys, _, _ = examples("sample", O, "W", 90)     # sample features, sample BG/NBD
Xmo, ymo, _, _ = examples("master", O, "D", 90)
ids = Xs.index.intersection(Xmo.index); print("sample ids in master:", len(ids), "of", len(Xs))
p = model.predict_proba(Xmo.loc[ids])   # master-trained model on the sample's customers
y = ymo.loc[ids].to_numpy()
own = ChurnClassifier(calibration="sigmoid-latest")
Xr, yr, _, _ = examples("sample", R, "W", 90); own.fit(Xr, yr, Xr, yr)
t = bootstrap_table(y, {"master_model": p, "sample_model": own.predict_proba(Xs.loc[ids]),
                        "bg_exp_sample": -Xs.loc[ids, "expected_purchases_horizon"].to_numpy()},
                    reference="bg_exp_sample", n_boot=500, seed=0)
print(t[t.metric == "auc"][["score", "estimate", "diff", "diff_low", "diff_high"]].to_string(index=False))
