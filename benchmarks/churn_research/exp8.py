import sys
from exp7 import *
cands = {f"c1_sig_{C}": mh_recal(lambda H: [H], extra=False, C=C) for C in (0.003, 0.01, 0.03)}
cands["c1_iso"] = mh_recal(lambda H: [H], extra=False, C=0.01, method="isotonic")
if __name__ == "__main__":
  for w in sys.argv[1].split(","):
    P = run(*args[w], cands); summarize(P)
    # ECE noise floor: outcomes drawn from the c1_sig_0.01 probabilities shifted to the actual rate
    from scipy.special import logit, expit
    from scipy.optimize import brentq
    rng = np.random.default_rng(0)
    for O, g in P.groupby("origin"):
        p = g["c1_sig_0.01"].to_numpy(); s = brentq(lambda d: expit(logit(p)+d).mean()-g.y.mean(), -3, 3); p = expit(logit(p)+s)
        e = [expected_calibration_error((rng.random(len(p)) < p).astype(int), p) for _ in range(200)]
        print("noise floor", O, f"mean ECE of a perfectly calibrated score {np.mean(e):.4f} (95th pct {np.percentile(e,95):.4f})")
