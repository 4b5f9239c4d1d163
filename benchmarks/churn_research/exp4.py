import sys
from exp1 import *
from exp2 import summarize, args
def curC(C):
    return lambda name, unit, H, O, Xo: cur(name, unit, H, O, Xo, C=C)
cands = {"cur": cur, "cur01": curC(0.1), "cur001": curC(0.01),
         "mh_2": multi_h(lambda H: sorted({H // 2, H})),
         "mh_2c01": multi_h(lambda H: sorted({H // 2, H}), C=0.1),
         "mh_2c001": multi_h(lambda H: sorted({H // 2, H}), C=0.01),
         }
for w in sys.argv[1].split(","):
    P = run(*args[w], cands); summarize(P)
