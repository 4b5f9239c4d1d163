"""The promotion gate of ``custscore train --register-as NAME --promote``, on the CDNOW sample.

Truth that does not come from the gate itself: an identical recipe must tie exactly
(paired intervals of width 0) and become champion; a recipe with an L2 penalty of 0.1
on the BG/NBD parameters (shrunk towards 1, far from CDNOW's r = 0.24, a = 0.79 and the
weekly alpha = 4.4) forecasts purchases worse and must stay challenger; the decision
must not change when the days after the cutoff are removed from the log.
"""
from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from conftest import cli

# One worker runs this module (--dist loadgroup in pyproject.toml): its tests register versions 2, 3, ... in
# one registry in order.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("promotion")]

CUTOFF = "1997-09-30"


def _train(log, uri, *extra):
    return cli("train", "--transactions", str(log), "--cutoff", CUTOFF, "--horizon-days", "90", "--time-unit",
               "W", "--register-as", "gate", "--tracking-uri", uri, "--experiment", "gate", *extra)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, cdnow_sample_csv, new_store):
    folder = tmp_path_factory.mktemp("gate")
    uri = new_store(folder)
    first = _train(cdnow_sample_csv, uri)
    assert first.returncode == 0, first.stderr
    assert "registered: gate version 1 (alias champion: models:/gate@champion)" in first.stdout
    assert "promotion: champion: no champion yet" in first.stdout
    return {"uri": uri, "log": cdnow_sample_csv, "folder": folder}


def _version(uri, number):
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    return client.get_model_version("gate", number), client


def test_a_worse_recipe_stays_challenger_with_the_reason(registry):
    proc = _train(registry["log"], registry["uri"], "--penalizer", "0.1")
    assert proc.returncode == 0, proc.stderr
    assert "registered: gate version 2 (alias challenger: models:/gate@challenger)" in proc.stdout
    assert "promotion: challenger: purchase forecast error worse: MAE +" in proc.stdout
    version, client = _version(registry["uri"], "2")
    assert version.aliases == ["challenger"] and version.tags["promotion.decision"] == "challenger"
    assert version.tags["promotion.reason"].startswith("purchase forecast error worse")
    assert float(version.tags["promotion.mae_diff_low"]) > 0
    assert version.tags["promotion.champion_version"] == "1"
    assert version.tags["promotion.origins"] == "1997-07-02"  # cutoff - 90 days: before the cutoff
    assert str(client.get_model_version_by_alias("gate", "champion").version) == "1"


def test_an_equal_recipe_becomes_champion_with_a_zero_width_tie(registry):
    proc = _train(registry["log"], registry["uri"])
    assert proc.returncode == 0, proc.stderr
    version, client = _version(registry["uri"], proc.stdout.split("registered: gate version ")[1].split()[0])
    assert version.aliases == ["champion"] and version.tags["promotion.decision"] == "champion"
    for key in ("auc_diff", "auc_diff_low", "auc_diff_high", "mae_diff", "mae_diff_low", "mae_diff_high"):
        assert float(version.tags[f"promotion.{key}"]) == 0.0, key
    assert "promotion: champion: not worse than champion version 1 beyond noise" in proc.stdout


def test_the_decision_never_reads_the_log_after_the_cutoff(cdnow_sample_csv):
    from custscore.config import ColumnMap, TrainConfig
    from custscore.features.customers import PandasEngine
    from custscore.features.io import read_transactions
    from custscore.training.promotion import promotion_decision

    tx = read_transactions(cdnow_sample_csv, ColumnMap())
    full = PandasEngine(tx)
    cut = PandasEngine(tx[tx["ts"] < "1997-10-01"].reset_index(drop=True))
    config = TrainConfig(cutoff=CUTOFF, horizon_days=90, time_unit="W", register_as="gate")
    champion = ("1", {"penalizer": "0.1", "time_unit": "W"})
    decisions = [promotion_decision(engine, config, champion) for engine in (full, cut)]
    assert decisions[0] == decisions[1]
    assert decisions[0].alias == "champion"  # the new (unpenalised) recipe beats the penalised champion
    assert float(decisions[0].tags["promotion.mae_diff_high"]) < 0


@pytest.mark.parametrize("promote, alias", [("always", "champion"), ("never", "challenger")])
def test_promote_always_and_never_skip_the_gate(promote, alias):
    from custscore.config import TrainConfig
    from custscore.training.promotion import promotion_decision

    config = TrainConfig(cutoff=CUTOFF, register_as="gate", promote=promote)
    decision = promotion_decision(None, config, ("1", {}))  # no engine: nothing is backtested
    assert decision.alias == alias and decision.reason == f"--promote {promote}"
