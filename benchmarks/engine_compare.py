"""Open, RFM summary and features at three dates of one log with one engine (peak RSS of the process):
``python benchmarks/engine_compare.py ENGINE [LOG]``, run alternately per engine in fresh processes."""
import time, sys, resource
from custscore.features.engines import open_engine
eng = sys.argv[1]
log = sys.argv[2] if len(sys.argv) > 2 else '/tmp/s8/tx_10m_customer.parquet'
t = time.perf_counter(); e = open_engine(log, engine=eng); t_open = time.perf_counter() - t
t = time.perf_counter(); r = e.rfm_summary('2023-12-31', 'W'); t_rfm = time.perf_counter() - t
t = time.perf_counter()
for d in ('2023-09-30', '2023-07-02', '2023-04-03'):
    e.customer_features(d, 'W')
t_feat = time.perf_counter() - t
print(f"{eng:7s} {type(e).__name__:13s} open {t_open:5.2f} s  rfm {t_rfm:4.2f} s  features x3 {t_feat:4.2f} s  peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1e6:.2f} GB")
