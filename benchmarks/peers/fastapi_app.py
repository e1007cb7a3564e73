"""The FastAPI + pydantic way of serving a fit: a typed model of the body, as its users write it.

Served by ``benchmarks/peer_servers.py`` on uvicorn (one worker per core, and one), from
its own virtual environment; never imported by fitserve.
"""

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.linear_model import LinearRegression

app = FastAPI()


class Data(BaseModel):
    """The body: training rows, their targets and the rows to predict."""

    X_train: list[list[float]]
    y_train: list[float]
    X_test: list[list[float]]


@app.post("/predict")
def predict(data: Data) -> dict:
    """Fit on X_train and y_train, predict X_test."""
    X_train = np.array(data.X_train)
    y_train = np.array(data.y_train)
    X_test = np.array(data.X_test)
    model = LinearRegression().fit(X_train, y_train)
    predictions = model.predict(X_test)
    return {"coef": model.coef_.tolist(), "intercept": float(model.intercept_), "predictions": predictions.tolist()}
