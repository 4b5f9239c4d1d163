"""Plain-text summaries of a training run for the terminal."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # annotations only: keeps `custscore train` fast to fail on bad input
    from custscore.training.training_memo import ValidationSample
    from custscore.training.pipeline import TrainResult
    from custscore.training.tracking import LoggedModel

#: Fader, Hardie & Lee (2005) on the CDNOW sample, weeks (see shared/domain.md); Pareto/NBD
#: (FHL's MATLAB note) and MBG/NBD (Batislam et al. 2007) on the same sample, as issue #16 quotes them.
CDNOW_PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "p": 6.25, "q": 3.74, "v": 15.44,
                   "pnbd_r": 0.553, "pnbd_alpha": 10.578, "pnbd_s": 0.606, "pnbd_beta": 11.669,
                   "mbgnbd_r": 0.525, "mbgnbd_alpha": 6.183, "mbgnbd_a": 0.891, "mbgnbd_b": 1.614}


def _param(value: float) -> str:
    """3 decimals, or 3 significant digits with an exponent outside [0.001, 1e6): never ``0.000`` for 1e-07.

    >>> _param(0.2426), _param(1e-07), _param(5e4), _param(2.5e7)
    ('0.243', '1e-07', '50000.000', '2.5e+07')
    """
    return f"{value:.3f}" if 1e-3 <= abs(value) < 1e6 else f"{value:.3g}"


def format_parameters(result: TrainResult, published: Optional[dict[str, float]] = None) -> str:
    """Fitted purchase-model and Gamma-Gamma parameters, next to published ones when given.

    Every purchase model fitted at the cutoff is listed, its parameters with its MLflow
    prefix (the reference BG/NBD without one).
    """
    models = list(result.purchase.fits.values()) if result.purchase is not None else [result.scorer.purchase_model]
    fitted = {f"{m.PARAM_PREFIX}{k}": v for m in models for k, v in m.params_.items()}
    fitted.update(result.scorer.spend_params())
    unit = "weeks" if result.scorer.time_unit == "W" else "days"
    width = max(8, max(len(name) + 1 for name in fitted))
    lines = [f"{'param':<{width}}{'fitted':>10}" + (f"{'published':>11}{'diff':>8}" if published else "")]
    for name, value in fitted.items():
        row = f"{name:<{width}}{_param(value):>10}"
        if published and name in published:
            row += f"{published[name]:>11.3f}{100 * (value / published[name] - 1):>7.1f}%"
        lines.append(row)
    shipped = result.scorer.purchase_model
    lines.append(f"(alpha in {unit}, as pnbd_beta; {shipped.MODEL_NAME} log-likelihood {shipped.log_likelihood_:.1f})")
    if not result.scorer.has_amounts:
        lines.append("(no amounts in the log: Gamma-Gamma not fitted, value columns are NaN)")
    return "\n".join(lines)



def format_purchase_choice(result: TrainResult) -> str:
    """The purchase models compared: what the scores use, why, and the comparison table."""
    choice = result.purchase
    if choice is None:
        return f"purchase_model: {result.scorer.purchase_model.KEY}"
    lines = [f"purchase_model: {choice.model} (requested {choice.requested})", f"  why: {choice.reason}"]
    if choice.validation_days:
        header = ["model", "identified", "deviance", "MAE", "predicted", "actual", "log-lik"]
        cells = [[row.model, "yes" if row.identified else "no", f"{row.validation_poisson_deviance:.4f}",
                  f"{row.validation_mae:.4f}", f"{row.validation_predicted:.1f}", f"{row.validation_actual:.0f}",
                  "-" if math.isnan(row.log_likelihood) else f"{row.log_likelihood:.1f}"]
                 for row in choice.table.itertuples()]
        marks = [""] + [" *" if row.chosen else "" for row in choice.table.itertuples()]
        widths = [max(len(r[j]) for r in [header] + cells) for j in range(len(header))]
        for r, mark in zip([header] + cells, marks):  # the name left, the numbers right, two spaces apart
            lines.append("  " + r[0].ljust(widths[0]) + "".join("  " + c.rjust(w) for c, w in zip(r[1:], widths[1:]))
                         + mark)
        lines.append(f"  (validation: refitted {choice.validation_days} days before the cutoff, purchases per "
                     "customer predicted vs actual up to it; deviance = mean Poisson deviance, lower is better)")
        if choice.table["log_likelihood"].isna().any():
            lines.append("  (log-lik at the cutoff on every customer; - = not refitted there: not chosen on the sample)")
        lines += _sample_line(choice.validation_sample)
    return "\n".join(lines)


def format_metrics(result: TrainResult) -> str:
    """Holdout metrics: purchases predicted vs actual, churn AUC vs baselines."""
    m = result.metrics
    lines = []
    if "holdout_purchases_actual" in m:
        lines.append(f"holdout purchases over {int(m['holdout_days'])} days: predicted "
                     f"{m['holdout_purchases_predicted']:.0f}, actual {m['holdout_purchases_actual']:.0f} "
                     f"({m['holdout_purchases_error_pct']:+.1f} %)")
    aucs = {k[len("auc_"):]: v for k, v in m.items() if k.startswith("auc_")}
    if aucs:
        lines.append(f"churn within {result.scorer.horizon_days} days, ROC AUC on the holdout "
                     f"(actual churn rate {m['churn_rate_actual']:.3f}):")
        for name, value in aucs.items():
            lines.append(f"  {name:<40}{value:.3f}")
        lines.append(f"  Brier score of churn_probability: {m['brier_churn_probability']:.4f}")
    if not lines:
        lines.append("no holdout after the cutoff: nothing to evaluate")
    lines.append(f"frequency/monetary correlation (Gamma-Gamma assumes ~0): {m['frequency_monetary_corr']:.3f}")
    return "\n".join(lines)


def _sample_line(sample: Optional[ValidationSample]) -> list[str]:
    """``  validated on 250,000 of 1,000,000 customers (...)`` when the choice used a sample, else nothing."""
    if sample is None or not sample.sampled:
        return []
    return [f"  validated on {sample.describe()} (a seeded uniform sample, --validation-sample; "
            "the shipped models use every customer)"]


def format_churn_choice(result: TrainResult) -> str:
    """What ships as ``churn_probability`` and why (training.churn_select)."""
    lines = [f"churn_probability: {result.scorer.churn_model}"]
    if result.churn is not None:
        lines.append(f"  why: {result.churn.selection.reason}")
        lines += _sample_line(result.churn.validation_sample)
        classifier = result.churn.classifier
        if classifier is not None and classifier.dropped_features_:
            lines.append(f"  classifier features dropped (constant or float noise at fit time): "
                         f"{', '.join(classifier.dropped_features_)}")
    return "\n".join(lines)


def format_training_summary(result: TrainResult, logged: LoggedModel,
                            published: Optional[dict[str, float]] = None) -> str:
    parts = [format_parameters(result, published), "", format_purchase_choice(result), "", format_churn_choice(result),
             "", format_metrics(result), "",
             f"customers: {result.n_customers}", f"run id:    {logged.run_id}", f"model URI: {logged.model_uri}"]
    if logged.registered_name:
        parts.append(f"registered: {logged.registered_name} version {logged.registered_version} "
                     f"(alias {logged.alias}: {logged.serving_uri})")
        if logged.promotion_reason:
            parts.append(f"promotion: {logged.alias}: {logged.promotion_reason}")
    return "\n".join(parts)
