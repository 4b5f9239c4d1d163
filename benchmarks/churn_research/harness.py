"""Shared helpers of the churn-model research scripts (issue 4); see README.md here."""
import os, pickle, time, sys
import numpy as np, pandas as pd
from custscore.config import TrainConfig
from custscore.features.cdnow import load_cdnow_sample, load_cdnow_master
from custscore.features.io import normalise_transactions
from custscore.features.customers import PandasEngine
from custscore.training.pipeline import fit_purchase
from custscore.training.churn import churn_features, churn_labels
from custscore.training.metrics import roc_auc, expected_calibration_error, bootstrap_table

CACHE = os.environ.get("CHURN_RESEARCH_CACHE", "/tmp/churn-research-cache")
os.makedirs(CACHE, exist_ok=True)
_engines = {}
def engine(name):
    if name not in _engines:
        tx = load_cdnow_master() if name == "master" else load_cdnow_sample()
        _engines[name] = PandasEngine(normalise_transactions(tx))
    return _engines[name]

def state(name, date, unit):
    """customer features + fitted bgnbd at date."""
    date = pd.Timestamp(date)
    path = f"{CACHE}/{name}_{unit}_{date.date()}.pkl"
    if os.path.exists(path):
        return pickle.load(open(path, "rb"))
    eng = engine(name)
    cust = eng.customer_features(date, unit)
    cfg = TrainConfig(cutoff=date, time_unit=unit, purchase_model="bgnbd")
    bg = fit_purchase(cust, cfg, str(date.date()))
    pickle.dump((cust, bg), open(path, "wb"))
    return cust, bg

def examples(name, date, unit, horizon):
    """(X, y) at date with labels over (date, date+horizon]."""
    date = pd.Timestamp(date)
    cust, bg = state(name, date, unit)
    X = churn_features(cust, bg, horizon, unit)
    y = churn_labels(engine(name), X.index, date, horizon)
    return X, y, cust, bg
