"""Calibrated confidences: temperature scaling (Guo et al. 2017) fitted on the validation part, the
expected calibration error (equal-width bins) and the reliability diagram's data.

A temperature ``T`` divides the log-probabilities before the softmax: ``T > 1`` softens an overconfident
model, ``T < 1`` sharpens an underconfident one; the predicted class never changes.

The fitted temperature is kept only when it lowers the ECE of the faces that fitted it
(:func:`temperature_decision`): fitted on a small validation part it can make the confidences worse (the
demo: test ECE 0.090 → 0.133), and then the run keeps temperature 1 and says so.
"""

from __future__ import annotations

import numpy as np

from fer_utils.training.result_parts import Calibration

#: Equal-width confidence bins of the ECE and the reliability diagram.
CALIBRATION_BINS = 15
#: Search range of the temperature (log-spaced bounds).
TEMPERATURE_RANGE = (0.05, 20.0)


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row by row (probabilities in, probabilities out)."""
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)) / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def negative_log_likelihood(probabilities: np.ndarray, targets: np.ndarray) -> float:
    picked = np.asarray(probabilities)[np.arange(len(targets)), np.asarray(targets)]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def fit_temperature(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``targets`` (scipy, bounded on log T)."""
    from scipy.optimize import minimize_scalar

    if not len(targets):
        return 1.0
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(apply_temperature(probabilities, np.exp(log_t)), targets),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


def reliability_bins(
    probabilities: np.ndarray, targets: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[dict]:
    """Per equal-width confidence bin: its range, faces, mean confidence and accuracy (empty bins: None)."""
    probabilities, targets = np.asarray(probabilities), np.asarray(targets)
    confidence = probabilities.max(axis=1) if len(targets) else np.zeros(0)
    correct = probabilities.argmax(axis=1) == targets if len(targets) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        rows.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "faces": count,
                "confidence": float(confidence[inside].mean()) if count else None,
                "accuracy": float(correct[inside].mean()) if count else None,
            }
        )
    return rows


def expected_calibration_error(
    probabilities: np.ndarray, targets: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """ECE: the face-weighted mean |accuracy − confidence| over equal-width confidence bins."""
    rows = reliability_bins(probabilities, targets, bins)
    total = sum(row["faces"] for row in rows)
    if not total:
        return 0.0
    return float(
        sum(row["faces"] * abs(row["accuracy"] - row["confidence"]) for row in rows if row["faces"]) / total
    )


def temperature_decision(probabilities: np.ndarray, targets: np.ndarray, fitted_on: str) -> dict:
    """The temperature fitted on ``probabilities`` / ``targets`` and whether it is kept: only when it
    lowers their ECE; otherwise the temperature applied is 1 (the raw softmax). ``decision`` says which,
    with the numbers, in one sentence naming ``fitted_on``."""
    fitted = fit_temperature(probabilities, targets)
    before = expected_calibration_error(probabilities, targets)
    after = expected_calibration_error(apply_temperature(probabilities, fitted), targets)
    kept = after < before
    if kept:
        decision = (
            f"temperature {fitted:.3f} kept: it lowers the ECE of the {fitted_on} that fitted it "
            f"({before:.3f} → {after:.3f})"
        )
    else:
        decision = (
            f"no temperature applied (1): the fitted {fitted:.3f} does not lower the ECE of the {fitted_on} "
            f"that fitted it ({before:.3f} → {after:.3f}), so the raw softmax is kept"
        )
    return {
        "temperature": fitted if kept else 1.0,
        "fitted_temperature": fitted,
        "kept": kept,
        "fit_ece_before": before,
        "fit_ece_after": after,
        "decision": decision,
    }


def calibrate(
    validation_probabilities: np.ndarray,
    validation_targets: np.ndarray,
    test_probabilities: np.ndarray,
    test_targets: np.ndarray,
) -> dict:
    """``metrics.json`` → ``calibration``: the temperature fitted on the validation part and whether it is
    kept (:func:`temperature_decision`; ``temperature`` is the one applied, 1 when not kept), the test
    part's ECE and negative log-likelihood before and after it, and the reliability bins before and after."""
    decision = temperature_decision(validation_probabilities, validation_targets, "validation part")
    temperature = decision["temperature"]
    scaled = apply_temperature(test_probabilities, temperature) if decision["kept"] else test_probabilities
    return {
        "method": "temperature scaling on the validation part",
        **decision,
        "bins": CALIBRATION_BINS,
        "test_ece_before": expected_calibration_error(test_probabilities, test_targets),
        "test_ece_after": expected_calibration_error(scaled, test_targets),
        "test_nll_before": negative_log_likelihood(test_probabilities, test_targets),
        "test_nll_after": negative_log_likelihood(scaled, test_targets),
        "reliability_before": reliability_bins(test_probabilities, test_targets),
        "reliability_after": reliability_bins(scaled, test_targets),
    }


def reliability_figure(calibration: Calibration | dict, title: str = "Reliability on the test part"):
    """Plotly figure of accuracy against confidence per bin, before and after temperature scaling
    (the diagonal is perfect calibration); ``calibration``: a run's record or :func:`calibrate`'s dict."""
    import plotly.graph_objects as go

    calibration = Calibration.from_json(calibration)
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dot"}))
    for key, name in (("reliability_before", "before"), ("reliability_after", "after")):
        rows = [row for row in getattr(calibration, key) or [] if row["faces"]]
        ece = getattr(calibration, f"test_ece_{name}")
        figure.add_trace(
            go.Scatter(
                x=[row["confidence"] for row in rows],
                y=[row["accuracy"] for row in rows],
                mode="lines+markers",
                name=f"{name} (ECE {ece:.3f})" if ece is not None else name,
                text=[f"{row['faces']} faces" for row in rows],
            )
        )
    temperature = calibration.temperature
    figure.update_layout(
        title=f"{title} (T = {temperature:.2f})" if temperature else title,
        xaxis={"title": "confidence", "range": [0, 1]},
        yaxis={"title": "accuracy", "range": [0, 1]},
    )
    return figure
