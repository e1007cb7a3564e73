"""The classic Flask example of serving a fit: what its users write, as they write it.

Served by ``benchmarks/peer_servers.py`` on gunicorn (one sync worker per core) and on
waitress (one process), from their own virtual environment; never imported by fitserve.
"""

import numpy as np
from flask import Flask, jsonify, request
from sklearn.linear_model import LinearRegression

app = Flask(__name__)


@app.route("/predict", methods=["POST"])
def predict():
    """Fit on X_train and y_train, predict X_test."""
    data = request.get_json()
    X_train = np.array(data["X_train"])
    y_train = np.array(data["y_train"])
    X_test = np.array(data["X_test"])
    model = LinearRegression().fit(X_train, y_train)
    predictions = model.predict(X_test)
    return jsonify(
        {"coef": model.coef_.tolist(), "intercept": float(model.intercept_), "predictions": predictions.tolist()}
    )
