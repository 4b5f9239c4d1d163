import sys
from exp1 import *
def summarize(P):
    keys = [c for c in P.columns if c not in ("y", "cid", "origin", "bg_exp", "bg_pno")]
    for O, g in P.groupby("origin"):
        print(pd.Timestamp(O).date(), f"rate={g.y.mean():.3f}", " ".join(f"{k}:mean={g[k].mean():.3f},ece={expected_calibration_error(g.y, g[k]):.4f}" for k in keys))
    print("pooled", " ".join(f"{k}:ece={expected_calibration_error(P.y, P[k]):.4f}" for k in keys))
cands = {"cur": cur,
         "mh_2": multi_h(lambda H: sorted({H // 2, H})),
         "mh_3": multi_h(lambda H: sorted({H // 3, 2 * H // 3, H})),
         "mh_2nx": multi_h(lambda H: sorted({H // 2, H}), extra=False),
         "mh_2hgb": multi_h(lambda H: sorted({H // 2, H}), model="hgb"),
         }
args = {"m180": ("master", "D", 180, ["1997-09-03", "1997-11-02", "1998-01-01"]),
        "m90": ("master", "D", 90, ["1997-12-02", "1998-01-31", "1998-04-01"]),
        "s90": ("sample", "W", 90, ["1997-12-02", "1998-01-31", "1998-04-01"]),
        "s90b": ("sample", "W", 90, ["1997-09-30"]),
        "m180b": ("master", "D", 180, ["1997-09-30"]),
        "m90b": ("master", "D", 90, ["1997-09-30"])}
if __name__ == "__main__":
  for w in sys.argv[1].split(","):
    P = run(*args[w], cands); summarize(P)
