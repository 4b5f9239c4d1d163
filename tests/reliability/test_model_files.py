"""Model files are data, never code: crafted pickles, changed bytes, round trips, the pyfunc, aliases."""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import struct

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import cli
from custscore.errors import CustscoreError
from custscore.features.io import normalise_transactions, read_transactions
from custscore.training import bundle, codec

AS_OF = "1997-09-30"


class _RunsCommand:
    """A pickle that, when unpickled, writes a marker file through a shell command."""

    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


@pytest.fixture()
def model_copy(trained, tmp_path):
    """A private copy of the trained MLflow model folder (the session's store stays untouched)."""
    mlflow.set_tracking_uri(trained["config"].tracking_uri)
    local = mlflow.artifacts.download_artifacts(f"runs:/{trained['logged'].run_id}/model",
                                                dst_path=str(tmp_path / "download"))
    folder = tmp_path / "model"
    shutil.copytree(local, folder)
    return folder


def _score_cli(model: str, log, tmp_path):
    out = tmp_path / "scores.csv"
    proc = cli("score", "--model", model, "--transactions", str(log), "--as-of", AS_OF, "--output", str(out))
    return proc, out


def _assert_refused(proc, out, model, *words):
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert str(model) in lines[0] and all(w in lines[0] for w in words), lines[0]
    assert not out.exists()


# ------------------------------------------------------------------ crafted artifacts


def test_the_crafted_pickle_really_runs_a_command(tmp_path):
    """The control: unpickling the payload used below does create the marker."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(_RunsCommand(marker)))
    assert marker.exists()


@pytest.mark.parametrize("name, dump", [(bundle.TREE_FILE, "pickle"), (bundle.ARRAYS_FILE, "joblib")])
def test_pickle_in_place_of_a_model_file_is_refused_without_running_it(model_copy, cdnow_sample_csv, tmp_path,
                                                                       name, dump):
    import joblib
    marker = tmp_path / "pwned"
    path = model_copy / bundle.MODEL_SCORER_DIR / name
    if dump == "pickle":
        path.write_bytes(pickle.dumps(_RunsCommand(marker)))
    else:
        joblib.dump(_RunsCommand(marker), path)
    proc, out = _score_cli(str(model_copy), cdnow_sample_csv, tmp_path)
    _assert_refused(proc, out, model_copy, f"{name} has SHA-256", "the file was changed")
    with pytest.raises(CustscoreError, match=f"{name} has SHA-256"):
        mlflow.pyfunc.load_model(str(model_copy))
    assert not marker.exists()


def test_old_joblib_model_is_refused_without_running_it(model_copy, cdnow_sample_csv, tmp_path):
    """The format-2 layout: a joblib pickle as the pyfunc artifact and no data files."""
    import joblib
    marker = tmp_path / "pwned"
    shutil.rmtree(model_copy / "data")
    (model_copy / "artifacts").mkdir()
    joblib.dump({"format_version": 2, "scorer": _RunsCommand(marker)}, model_copy / "artifacts" / "scorer.joblib")
    proc, out = _score_cli(str(model_copy), cdnow_sample_csv, tmp_path)
    _assert_refused(proc, out, model_copy, "old model format (a pickled scorer", "retrain")
    assert not marker.exists()


def test_object_array_in_the_npz_is_refused_even_with_matching_hashes(model_copy, tmp_path):
    """Someone who rewrites the manifest too still cannot make the loader unpickle."""
    marker = tmp_path / "pwned"
    folder = model_copy / bundle.MODEL_SCORER_DIR
    with np.load(folder / bundle.ARRAYS_FILE) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["a0"] = np.array([_RunsCommand(marker)], dtype=object)
    np.savez(folder / bundle.ARRAYS_FILE, **arrays)
    _rehash(folder)
    with pytest.raises(CustscoreError, match=f"model {folder}: not a custscore model file .*allow_pickle"):
        bundle.load_scorer(folder)
    assert not marker.exists()


def test_unknown_class_is_refused(model_copy):
    folder = model_copy / bundle.MODEL_SCORER_DIR
    doc = json.loads((folder / bundle.TREE_FILE).read_text())
    doc["scorer"]["state"]["churn"]["$object"] = "subprocess.Popen"
    (folder / bundle.TREE_FILE).write_text(json.dumps(doc))
    _rehash(folder)
    with pytest.raises(CustscoreError, match=r"unknown class 'subprocess.Popen'"):
        bundle.load_scorer(folder)


def _rehash(folder) -> None:
    manifest = json.loads((folder / bundle.MANIFEST_FILE).read_text())
    for name in manifest["sha256"]:
        manifest["sha256"][name] = bundle.sha256((folder / name).read_bytes())
    (folder / bundle.MANIFEST_FILE).write_text(json.dumps(manifest))


# ------------------------------------------------------------------ changed bytes


def test_one_flipped_byte_of_a_float_in_the_npz_is_refused(trained, model_copy, cdnow_sample_csv, tmp_path):
    path = model_copy / bundle.MODEL_SCORER_DIR / bundle.ARRAYS_FILE
    data = bytearray(path.read_bytes())
    weight = struct.pack("<d", trained["result"].scorer.churn.weights_[0])
    at = data.find(weight)
    assert at > 0
    data[at] ^= 0x01  # lowest mantissa byte of the first churn weight
    path.write_bytes(bytes(data))
    proc, out = _score_cli(str(model_copy), cdnow_sample_csv, tmp_path)
    _assert_refused(proc, out, model_copy, "arrays.npz has SHA-256")


def test_one_changed_digit_of_a_float_in_the_json_is_refused(trained, model_copy, cdnow_sample_csv, tmp_path):
    path = model_copy / bundle.MODEL_SCORER_DIR / bundle.TREE_FILE
    text = path.read_text()
    alpha = repr(trained["result"].scorer.purchase_model.params_["alpha"])
    changed = alpha[:-1] + ("1" if alpha[-1] != "1" else "2")
    assert text.count(alpha) == 1
    path.write_text(text.replace(alpha, changed))
    proc, out = _score_cli(str(model_copy), cdnow_sample_csv, tmp_path)
    _assert_refused(proc, out, model_copy, "scorer.json has SHA-256")


def test_rewritten_files_and_manifest_are_refused_against_the_run_param(trained, model_copy):
    """The run records the manifest's SHA-256 (an immutable param): a consistent rewrite still fails."""
    client = mlflow.tracking.MlflowClient(trained["config"].tracking_uri)
    recorded = client.get_run(trained["logged"].run_id).data.params[bundle.MANIFEST_PARAM]
    folder = model_copy / bundle.MODEL_SCORER_DIR
    assert recorded == bundle.sha256((folder / bundle.MANIFEST_FILE).read_bytes())
    bundle.load_model_dir(model_copy, "m", recorded)  # untouched: loads
    text = (folder / bundle.TREE_FILE).read_text()
    rate = f'"discount_rate": {trained["result"].scorer.discount_rate!r}'
    assert text.count(rate) == 1
    (folder / bundle.TREE_FILE).write_text(text.replace(rate, '"discount_rate": 0.5'))
    _rehash(folder)
    with pytest.raises(CustscoreError, match=r"model m: manifest.json has SHA-256 .* recorded when the model was logged"):
        bundle.load_model_dir(model_copy, "m", recorded)


def test_runs_uri_checks_the_manifest_against_its_run(trained, model_copy):
    """A run whose files were rewritten consistently, and one that recorded no hash: both refused by URI."""
    from custscore.serving.model_source import load_scorer_from_uri
    mlflow.set_tracking_uri(trained["config"].tracking_uri)
    client = mlflow.tracking.MlflowClient()
    recorded = client.get_run(trained["logged"].run_id).data.params[bundle.MANIFEST_PARAM]
    folder = model_copy / bundle.MODEL_SCORER_DIR
    text = (folder / bundle.TREE_FILE).read_text()
    (folder / bundle.TREE_FILE).write_text(text.replace('"horizon_days": 90', '"horizon_days": 30', 1))
    _rehash(folder)
    experiment = client.get_experiment_by_name(trained["config"].experiment).experiment_id
    for params in ({bundle.MANIFEST_PARAM: recorded}, {}):
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_params(params)
            mlflow.log_artifacts(str(model_copy), "model")
        uri = f"runs:/{run.info.run_id}/model"
        expected = ("manifest.json has SHA-256 .* recorded when the model was logged" if params
                    else f"its MLflow run recorded no {bundle.MANIFEST_PARAM}")
        with pytest.raises(CustscoreError, match=f"^model '{uri}': {expected}"):
            load_scorer_from_uri(uri)


def test_missing_file_is_refused(model_copy, cdnow_sample_csv, tmp_path):
    (model_copy / bundle.MODEL_SCORER_DIR / bundle.ARRAYS_FILE).unlink()
    proc, out = _score_cli(str(model_copy), cdnow_sample_csv, tmp_path)
    _assert_refused(proc, out, model_copy, "arrays.npz is missing")


# ------------------------------------------------------------------ round trip


def test_save_load_round_trip_scores_bit_identical(trained, cdnow_sample_csv, tmp_path):
    scorer = trained["result"].scorer
    bundle.save_scorer(scorer, tmp_path / "scorer")
    loaded = bundle.load_scorer(tmp_path / "scorer")
    tx = read_transactions(cdnow_sample_csv)
    for as_of, horizon in ((AS_OF, None), ("1998-06-30", 365)):
        pd.testing.assert_frame_equal(loaded.score(tx, as_of=as_of, horizon_days=horizon),
                                      scorer.score(tx, as_of=as_of, horizon_days=horizon), check_exact=True)
    assert loaded.cutoff == scorer.cutoff and loaded.cutoff.unit == scorer.cutoff.unit
    pd.testing.assert_frame_equal(loaded.purchase_model.variance_matrix_, scorer.purchase_model.variance_matrix_, check_exact=True)
    assert not hasattr(loaded.churn, "pipeline_")  # the scikit-learn pipeline is folded, not saved


def test_a_scorer_shipping_a_baseline_round_trips_bit_identical(trained, cdnow_sample_csv, tmp_path):
    """A scorer whose churn_probability is a calibrated baseline (BaselineChurnModel) is data too."""
    import dataclasses

    from custscore.features.customers import customer_features
    from custscore.features.periods import merge_periods
    from custscore.training.churn import churn_features
    from custscore.training.churn_select import BaselineChurnModel, DEFAULT_BASELINE

    scorer = trained["result"].scorer
    tx = read_transactions(cdnow_sample_csv)
    customers = customer_features(merge_periods(tx[tx["ts"] <= "1997-06-30"]), "1997-06-30", scorer.time_unit)
    X = churn_features(customers, scorer.purchase_model, scorer.horizon_days, scorer.time_unit)
    y = (X["n_purchases_90d"].to_numpy() == 0).astype(int)  # any 0/1 labels: the test is the file format
    baseline = BaselineChurnModel(name=DEFAULT_BASELINE).fit(X, y)
    shipped = dataclasses.replace(scorer, churn=baseline, churn_model=DEFAULT_BASELINE)
    bundle.save_scorer(shipped, tmp_path / "scorer")
    loaded = bundle.load_scorer(tmp_path / "scorer")
    assert type(loaded.churn) is BaselineChurnModel and loaded.churn_model == DEFAULT_BASELINE
    pd.testing.assert_frame_equal(loaded.score(tx, as_of=AS_OF), shipped.score(tx, as_of=AS_OF), check_exact=True)


def test_codec_round_trips_plain_values_with_their_types():
    value = {"f": 0.1, "nan": float("nan"), "inf": float("inf"), "ninf": -float("inf"), "neg0": -0.0,
             "i": 2**70, "s": "x", "b": True, "n": None, "l": [1, (2.5, "a")], "t": (),
             "a": np.arange(6, dtype=np.int32).reshape(2, 3), "f32": np.float32(1.1), "i64": np.int64(-3),
             "ts": pd.Timestamp("1997-09-30"), "tz": pd.Timestamp("2020-03-29 01:30:00.000000123", tz="Europe/Berlin"),
             "d": {"inner": {"x": np.bool_(True)}}}
    tree, arrays = codec.encode(value, {})
    text = json.dumps(tree, allow_nan=False)
    back = codec.decode(json.loads(text), arrays, {})
    assert back.keys() == value.keys()
    for key in value:
        got, want = back[key], value[key]
        assert type(got) is type(want), key
        if isinstance(want, np.ndarray):
            assert got.dtype == want.dtype and np.array_equal(got, want)
        elif isinstance(want, float) and np.isnan(want):
            assert np.isnan(got)
        else:
            assert got == want and repr(got) == repr(want), key
    assert np.signbit(back["neg0"])


@pytest.mark.parametrize("bad, where", [
    (lambda: 1, "x.bad"),
    ({1: "int key"}, "x.bad"),
    (np.array([object()], dtype=object), "x.bad"),
    (pd.Series([1.0]), "x.bad"),
    ({"deep": [set()]}, "x.bad['deep'][0]"),
])
def test_codec_refuses_anything_else_at_save_time(bad, where):
    class Holder:
        pass

    holder = Holder()
    holder.bad = bad
    with pytest.raises(TypeError, match="^" + re.escape(where)):
        codec.encode(holder, {"x": Holder})


def test_scikit_learn_object_on_the_scorer_fails_at_save_time(trained, tmp_path):
    from sklearn.linear_model import LogisticRegression
    scorer = trained["result"].scorer
    churn = scorer.churn.__class__.__new__(scorer.churn.__class__)
    churn.__dict__.update({k: v for k, v in vars(scorer.churn).items() if k != "pipeline_"}, model_=LogisticRegression())
    import dataclasses
    with pytest.raises(TypeError, match=r"CustomerScorer.churn.model_: sklearn.linear_model.*LogisticRegression"):
        bundle.save_scorer(dataclasses.replace(scorer, churn=churn), tmp_path / "s")


def test_isotonic_calibration_without_scikit_learn_equals_its_predict():
    from sklearn.isotonic import IsotonicRegression

    from custscore.training.calibration import ProbabilityCalibrator
    rng = np.random.default_rng(3)
    p = rng.random(2000)
    y = (rng.random(2000) < p**2).astype(int)
    cal = ProbabilityCalibrator(method="isotonic").fit(p, y)
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
    grid = np.concatenate([[-0.5, 0.0], rng.random(500), [1.0, 1.5]])
    np.testing.assert_allclose(cal.transform(grid), reference.predict(grid), rtol=0, atol=1e-12)
    codec.encode(cal, bundle.MODEL_CLASSES)  # plain data


# ------------------------------------------------------------------ MLflow pyfunc


def test_mlflow_pyfunc_load_model_predicts_through_the_checked_loader(trained, cdnow_sample_csv, monkeypatch):
    calls = []
    checked = bundle.load_scorer
    monkeypatch.setattr(bundle, "load_scorer", lambda *a, **k: calls.append(a) or checked(*a, **k))
    mlflow.set_tracking_uri(trained["config"].tracking_uri)
    model = mlflow.pyfunc.load_model(trained["logged"].model_uri)
    assert len(calls) == 1 and str(calls[0][0]).endswith(os.path.join("data", "scorer"))
    raw = pd.read_csv(cdnow_sample_csv, dtype={"customer_id": str, "date": str})
    got = model.predict(raw, params={"as_of": AS_OF, "horizon_days": 60})
    want = trained["result"].scorer.score(normalise_transactions(raw, bundle.PYFUNC_COLUMNS), as_of=AS_OF,
                                          horizon_days=60)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_exact=True)
    mlmodel = (mlflow.artifacts.download_artifacts(f"{trained['logged'].model_uri}/MLmodel"))
    text = open(mlmodel).read()
    assert "loader_module: custscore.training.bundle" in text and "cloudpickle" not in text
    assert "python_model" not in text  # no pickled or stored-code python model


# ------------------------------------------------------------------ one alias resolution per load


class _MovingAlias:
    """An MlflowClient whose alias moves to the other version on every lookup."""

    def __init__(self, real, versions) -> None:
        self.real, self.versions, self.lookups = real, versions, 0

    def get_model_version_by_alias(self, name, alias):
        self.lookups += 1
        return self.versions[self.lookups % len(self.versions)]

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.fixture()
def moving_alias(trained, monkeypatch):
    mlflow.set_tracking_uri(trained["config"].tracking_uri)
    mlflow.set_registry_uri(trained["config"].tracking_uri)
    real = mlflow.tracking.MlflowClient()
    name = "moving-alias"
    versions = [mlflow.register_model(trained["logged"].model_uri, name) for _ in range(2)]
    client = _MovingAlias(real, versions)
    monkeypatch.setattr(mlflow.tracking, "MlflowClient", lambda: client)  # model_source imports it when used
    downloaded = []
    download = mlflow.artifacts.download_artifacts
    monkeypatch.setattr(mlflow.artifacts, "download_artifacts",
                        lambda artifact_uri, **k: downloaded.append(artifact_uri) or download(artifact_uri, **k))
    return name, client, downloaded


def test_batch_load_resolves_the_alias_once_and_labels_what_it_loaded(moving_alias):
    from custscore.serving.model_source import load_scorer_from_uri
    name, client, downloaded = moving_alias
    labels = [load_scorer_from_uri(f"models:/{name}@champion")[1] for _ in range(6)]
    assert client.lookups == 6
    assert [f"models:/{label}" for label in labels] == downloaded
    assert sorted(set(labels)) == [f"{name}/1", f"{name}/2"]


def test_http_reload_resolves_the_alias_once_and_labels_what_it_loaded(moving_alias):
    import asyncio

    from custscore.serving.model_holder import ModelHolder
    name, client, downloaded = moving_alias
    holder = ModelHolder(f"models:/{name}@champion")

    async def reload_many():
        return [(await holder.reload()).label for _ in range(6)]

    labels = asyncio.run(reload_many())
    assert client.lookups == 6
    assert [f"models:/{label}" for label in labels] == downloaded
    assert holder.current.describe()["model_version"] == labels[-1].split("/")[1]
