"""The purchase-model interface: every model conforms, and BG/NBD's P(no purchase) is the churn formula."""
from __future__ import annotations

import numpy as np
import pytest

from custscore.training.bgnbd import BetaGeoModel
from custscore.training.purchase_models import PurchaseModel

BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # FHL 2005, CDNOW in weeks


def test_fitted_bgnbd_conforms_to_the_protocol() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 200)
    T = rng.uniform(20, 39, 200)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, 200), 0.0)
    model = BetaGeoModel().fit(x, t_x, T)
    assert isinstance(model, PurchaseModel)
    assert set(model.params_) == {"r", "alpha", "a", "b"} and isinstance(model.warnings_, tuple)


def test_bgnbd_p_no_purchase_by_hand() -> None:
    # x = 0: alive for sure, silent for t with probability ((alpha+T)/(alpha+T+t))**r (FHL 2005, section 3).
    model = BetaGeoModel()
    model.params_ = dict(BGNBD)
    r, alpha = BGNBD["r"], BGNBD["alpha"]
    p = model.p_no_purchase(10.0, [0, 2], [0.0, 30.43], [38.86, 38.86])
    assert p[0] == pytest.approx(((alpha + 38.86) / (alpha + 48.86)) ** r, rel=1e-12)
    alive = model.p_alive([2], [30.43], [38.86])[0]
    assert p[1] == pytest.approx(1 - alive + alive * ((alpha + 38.86) / (alpha + 48.86)) ** (r + 2), rel=1e-12)
