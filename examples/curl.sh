#!/bin/sh
# Every curl example of the README, against a running fitserve.
# Usage: examples/curl.sh [URL]   (default: localhost:8000; run from anywhere)
# The picture goes to examples/fit.svg, or into $FITSERVE_PICTURES when set.
set -eu
cd "$(dirname "$0")/.."
URL=${1:-${FITSERVE_URL:-localhost:8000}}

# The classic example: train and test data in one payload, predictions (and coefficients) back.
curl --json @examples/predict.json $URL/predict
# Named columns: the answer names the features and the target.
curl --json @examples/fit.json $URL/fit
# R-style statistics and 90% prediction intervals.
curl --json @examples/statistics.json $URL/fit
# Predict again from a model (an earlier answer's coef and intercept), without refitting.
curl --json @examples/model.json $URL/predict
# CSV: the training table as the body, options as query parameters.
curl --data-binary @examples/data/train.csv -H 'Content-Type: text/csv' "$URL/fit?target=price&statistics=true"
# Multipart: training and test tables as files.
curl -F train=@examples/data/train.csv -F test=@examples/data/test.csv -F target=price $URL/predict
# A CSV answer, with 95% prediction intervals.
curl -F train=@examples/data/train.csv -F test=@examples/data/test.csv -F target=price -F interval=prediction -H 'Accept: text/csv' $URL/predict
# A table with a text column and gaps, fitted from a formula; incomplete rows left out.
curl --data-binary @examples/data/housing.csv -H 'Content-Type: text/csv' "$URL/fit?formula=price~sqft%2Bage%2Bhood&missing=drop"
# R's anova table of a formula fit, and HC3 (heteroskedasticity-consistent) standard errors.
curl --data-binary @examples/data/housing.csv -H 'Content-Type: text/csv' "$URL/fit?formula=price~sqft%2Bhood&missing=drop&anova=true"
curl --data-binary @examples/data/housing.csv -H 'Content-Type: text/csv' "$URL/fit?formula=price~sqft%2Bhood&missing=drop&statistics=true&cov_type=HC3"
# One fit per group (by=store), each test row predicted by its own store's fit.
curl -F train=@examples/data/stores.csv -F test=@examples/data/stores_test.csv -F 'formula=sales ~ price' -F by=store $URL/predict
# Train once, predict many: send a whole earlier answer back as the model.
curl -s --json @examples/fit.json $URL/fit | jq '{model: ., X_test: {size: [90], rooms: [3], age: [5]}}' | curl --json @- $URL/predict
# A picture of the fit: points, fitted line, predictions and their 95% prediction band.
curl --json @examples/line.json -H 'Accept: image/svg+xml' -o fit.svg $URL/fit
mv fit.svg "${FITSERVE_PICTURES:-examples}/fit.svg"
