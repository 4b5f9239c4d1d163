import sys
from exp10 import *
def prodC(C):
    def f(name, unit, H, O, Xo):
        w = windows_of(name, unit, H, O)
        m = ChurnClassifier(C=C, calibration="sigmoid-latest").fit(pd.concat([a for a, _ in w]), pd.concat([b for _, b in w]), *w[0])
        return m.predict_proba(Xo)
    return f
cands = {"C01": prodC(0.01), "C003": prodC(0.003), "C001": prodC(0.001)}
if __name__ == "__main__":
  for w in sys.argv[1].split(","):
    P = run(*args[w], cands); summarize(P)
