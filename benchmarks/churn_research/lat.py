import time, numpy as np, pandas as pd
from harness import examples
from custscore.training.churn import ChurnClassifier, CHURN_FEATURES
X, y, _, _ = examples("sample", "1997-07-02", "W", 90)
m = ChurnClassifier(calibration="sigmoid-latest").fit(X, y, X, y)
row = X.iloc[[0]]
for _ in range(50): m.predict_proba(row)
t = time.perf_counter(); n = 2000
for _ in range(n): m.predict_proba(row)
print(f"predict_proba 1 row: {(time.perf_counter()-t)/n*1e3:.3f} ms")
# 5M rows synthetic: resample
rng = np.random.default_rng(0)
idx = rng.integers(0, len(X), 5_000_000)
X5 = X.iloc[idx].reset_index(drop=True) * rng.uniform(0.9, 1.1, (5_000_000, 1))
y5 = y.to_numpy()[idx]
t = time.perf_counter(); ChurnClassifier().fit(X5, y5); print(f"fit 5M rows: {time.perf_counter()-t:.1f} s")
