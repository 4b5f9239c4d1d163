"""The two model choices of ``custscore train`` alone, on every customer and on a sample, in one process.

``select_purchase_model`` and ``select_churn`` (training.purchase_choice, training.pipeline) on
a benchmark log at cutoff 2023-09-30, horizon 90 days, once per SIZE given (the
``--validation-sample``; 0 = every customer), each with a fresh training memo holding the
cutoff's features. Prints wall and CPU seconds of each and what was chosen.

    python benchmarks/selection_bench.py /tmp/s8/tx_10m_customer.parquet 0 250000 0 250000
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace

import pandas as pd

from custscore.config import ColumnMap, TrainConfig
from custscore.features.engines import open_engine
from custscore.training.pipeline import select_churn
from custscore.training.purchase_choice import select_purchase_model
from custscore.training.training_memo import TrainingMemo


def main(path: str, sizes: list[int]) -> None:
    engine = open_engine(path, ColumnMap(), "auto")
    cutoff = pd.Timestamp("2023-09-30")
    first_day = engine.date_range()[0]
    calibration = engine.customer_features(cutoff, "D")
    for size in sizes:
        config = TrainConfig(cutoff=cutoff, horizon_days=90, validation_sample=size)
        memo = TrainingMemo(engine, known={(cutoff, "D"): calibration})
        t0, c0 = time.perf_counter(), time.process_time()
        choice = select_purchase_model(memo, config, first_day, calibration)
        t1, c1 = time.perf_counter(), time.process_time()
        churn = select_churn(memo, replace(config, purchase_model=choice.model), first_day)
        t2, c2 = time.perf_counter(), time.process_time()
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
        print(f"S={size}: select_purchase_model {t1 - t0:.2f} s wall {c1 - c0:.2f} s cpu ({choice.model}); "
              f"select_churn {t2 - t1:.2f} s wall {c2 - c1:.2f} s cpu ({churn.selection.model}, "
              f"{churn.validation_sample.describe()}); load {load}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]])
