# Reference values for formula fits, computed with R's lm.
#
# Regenerate (R needed only for this; Debian: apt-get install r-base-core r-cran-sandwich r-cran-lmtest):
#     cd tests/data/r && Rscript references.R > references.json
#
# Data: housing.csv (48 training rows: a text column `hood` with 4 levels, a text column
# `garage`, a numeric `rooms` used as a factor, weights `w`, and one empty cell in each of
# price, sqft, hood, age, w, garage) and housing_test.csv (5 new rows, one with an empty
# `age`). Both were generated for these tests (see README.md beside them).
#
# Each case gives the formula as R reads it and as fitserve reads it, the coefficients
# named as R names them and as fitserve (patsy, formulaic) names them, in the same order,
# with summary.lm's statistics, sandwich's HC0-HC3 standard errors, and predict() on the
# test rows (null where a row has a missing value the formula uses, as na.exclude).
#
# Per case also, under "robust", for each of HC0-HC3 (sandwich::vcovHC): the coefficients'
# t values, p values and 95% intervals on the t distribution with df.residual degrees of
# freedom (lmtest::coeftest, lmtest::coefci), the Wald F-test of all slopes
# (b' V^-1 b / q on (q, df.residual), checked against lmtest::waldtest), and the 95%
# confidence and prediction bounds of the test rows (x0' V x0, plus sigma^2 for a new
# observation of weight 1); and under "anova", anova(lm). "anova_cases" are fits whose
# design is rank deficient (R leaves a term that adds no rank out of its table).

suppressMessages(library(sandwich))
suppressMessages(library(lmtest))
invisible(Sys.setlocale("LC_COLLATE", "C"))  # factor levels in code point order

train <- read.csv("housing.csv", na.strings = c("", "NA"), stringsAsFactors = FALSE)
test <- read.csv("housing_test.csv", na.strings = c("", "NA"), stringsAsFactors = FALSE)
train$hood <- factor(train$hood)
train$garage <- factor(train$garage)
test$hood <- factor(test$hood, levels = levels(train$hood))
test$garage <- factor(test$garage, levels = levels(train$garage))

cases <- list(
  list(name = "factor", r = price ~ sqft + hood, fitserve = "price ~ sqft + hood",
       names = c("sqft", "hood[T.Hillcrest]", "hood[T.Oakwood]", "hood[T.Riverside]")),
  list(name = "interaction", r = price ~ sqft * hood, fitserve = "price ~ sqft * hood",
       names = c("sqft", "hood[T.Hillcrest]", "hood[T.Oakwood]", "hood[T.Riverside]",
                 "sqft:hood[T.Hillcrest]", "sqft:hood[T.Oakwood]", "sqft:hood[T.Riverside]")),
  list(name = "identity", r = price ~ sqft + I(sqft^2) + I(age / 10),
       fitserve = "price ~ sqft + I(sqft**2) + I(age / 10)",
       names = c("sqft", "I(sqft ** 2)", "I(age / 10)")),
  list(name = "log", r = log(price) ~ log(sqft) + age + garage,
       fitserve = "log(price) ~ log(sqft) + age + garage",
       names = c("log(sqft)", "age", "garage[T.yes]")),
  list(name = "poly", r = price ~ poly(age, 2) + sqft, fitserve = "price ~ poly(age, 2) + sqft",
       complete = c("price", "age", "sqft"),
       names = c("poly(age, 2)[1]", "poly(age, 2)[2]", "sqft")),
  list(name = "weights", r = price ~ sqft + hood, fitserve = "price ~ sqft + hood", weight = "w",
       names = c("sqft", "hood[T.Hillcrest]", "hood[T.Oakwood]", "hood[T.Riverside]")),
  list(name = "na_exclude", r = price ~ sqft + age + hood + garage,
       fitserve = "price ~ sqft + age + hood + garage",
       names = c("sqft", "age", "hood[T.Hillcrest]", "hood[T.Oakwood]", "hood[T.Riverside]", "garage[T.yes]")),
  list(name = "numeric_factor", r = price ~ sqft + factor(rooms), fitserve = "price ~ sqft + C(rooms)",
       names = c("sqft", "C(rooms)[T.3]", "C(rooms)[T.5]", "C(rooms)[T.10]", "C(rooms)[T.12]")),
  list(name = "no_intercept", r = price ~ sqft + hood - 1, fitserve = "price ~ sqft + hood - 1",
       names = c("sqft", "hood[Downtown]", "hood[Hillcrest]", "hood[Oakwood]", "hood[Riverside]")),
  list(name = "center_scale", r = price ~ scale(sqft, scale = FALSE) + scale(age),
       fitserve = "price ~ center(sqft) + scale(age)", complete = c("price", "sqft", "age"),
       names = c("center(sqft)", "scale(age)")),
  list(name = "power", r = price ~ (sqft + age + garage)^2, fitserve = "price ~ (sqft + age + garage)**2",
       names = c("sqft", "age", "garage[T.yes]", "sqft:age", "sqft:garage[T.yes]", "age:garage[T.yes]")),
  list(name = "dot", r = price ~ ., fitserve = "price ~ .", excluded = "w",
       names = c("sqft", "age", "hood[T.Hillcrest]", "hood[T.Oakwood]", "hood[T.Riverside]", "rooms", "garage[T.yes]"))
)

num <- function(x) ifelse(is.na(x) | !is.finite(x), "null", sprintf("%.17g", x))
str <- function(x) paste0("\"", gsub("\"", "\\\\\"", gsub("\\\\", "\\\\\\\\", x)), "\"")
arr <- function(x) paste0("[", paste(x, collapse = ", "), "]")
obj <- function(keys, values) paste0("{", paste(paste0(str(keys), ": ", values), collapse = ", "), "}")

# The rows of the test table as the fit's design columns (NA rows where a value is missing).
test_design <- function(fit) {
  tt <- delete.response(terms(fit))
  frame <- model.frame(tt, test, na.action = na.pass, xlev = fit$xlevels)
  model.matrix(tt, frame, contrasts.arg = fit$contrasts)
}

# lmtest's Wald test of the model against the intercept alone, refitted on the rows the fit used
waldtest_f <- function(fit, formula, data, type) {
  data <- data[rownames(model.frame(fit)), ]
  full <- if (is.null(weights(fit))) lm(formula, data = data) else lm(formula, data = data, weights = .w)
  wald <- waldtest(full, . ~ 1, vcov = function(m) vcovHC(m, type = type), test = "F")
  wald$F[2]
}

robust_entry <- function(fit, type, predictions) {
  V <- vcovHC(fit, type = type)
  b <- coef(fit)
  df <- fit$df.residual
  tests <- coeftest(fit, vcov. = V, df = df)
  bounds <- coefci(fit, vcov. = V, df = df, level = 0.95)
  slopes <- names(b) != "(Intercept)"
  q <- sum(slopes)
  f_value <- drop(t(b[slopes]) %*% solve(V[slopes, slopes], b[slopes])) / q
  f_p <- pf(f_value, q, df, lower.tail = FALSE)
  X0 <- test_design(fit)
  spread <- rowSums((X0 %*% V) * X0)
  quantile <- qt(0.975, df)
  sigma2 <- summary(fit)$sigma^2
  fitted <- unname(predictions)
  obj(c("std_error", "t_value", "p_value", "ci_lower", "ci_upper", "f_statistic", "f_p_value",
        "confidence_lower", "confidence_upper", "prediction_lower", "prediction_upper"),
      c(arr(num(tests[, 2])), arr(num(tests[, 3])), arr(num(tests[, 4])), arr(num(bounds[, 1])), arr(num(bounds[, 2])),
        num(f_value), num(f_p),
        arr(num(fitted - quantile * sqrt(spread))), arr(num(fitted + quantile * sqrt(spread))),
        arr(num(fitted - quantile * sqrt(spread + sigma2))), arr(num(fitted + quantile * sqrt(spread + sigma2)))))
}

anova_table <- function(fit) {
  a <- anova(fit)
  rows <- sapply(seq_len(nrow(a)), function(i) obj(
    c("term", "df", "sum_sq", "mean_sq", "f_value", "p_value"),
    c(str(trimws(rownames(a)[i])), num(a[i, "Df"]), num(a[i, "Sum Sq"]), num(a[i, "Mean Sq"]),
      num(a[i, "F value"]), num(a[i, "Pr(>F)"]))))
  arr(rows)
}

entries <- character(0)
for (case in cases) {
  # fitserve's poly(), center() and scale() learn from the rows the fit uses; R's poly()
  # refuses missing values and R's scale() would learn from rows lm drops afterwards, so
  # those cases are given the complete rows of the columns they use.
  data <- if (is.null(case$complete)) train else train[complete.cases(train[, case$complete]), ]
  # fitserve's "." leaves out the weight column: R's "." sees no such column if it is not there
  if (!is.null(case[["excluded"]])) data <- data[, setdiff(names(data), case[["excluded"]])]
  if (is.null(case[["weight"]])) {
    fit <- lm(case$r, data = data, na.action = na.exclude)
  } else {
    data$.w <- data[[case$weight]]
    fit <- lm(case$r, data = data, weights = .w, na.action = na.exclude)
  }
  s <- summary(fit)
  co <- coef(s)
  if (nrow(co) != length(case$names) + ("(Intercept)" %in% rownames(co))) stop(case$name, ": ", paste(rownames(co), collapse = " "))
  fitserve_names <- if ("(Intercept)" %in% rownames(co)) c("(Intercept)", case$names) else case$names
  hc <- sapply(c("HC0", "HC1", "HC2", "HC3"), function(type) sqrt(diag(vcovHC(fit, type = type))))
  coefficients <- sapply(seq_len(nrow(co)), function(i) obj(
    c("r_name", "name", "estimate", "std_error", "t_value", "p_value", "se_HC0", "se_HC1", "se_HC2", "se_HC3"),
    c(str(rownames(co)[i]), str(fitserve_names[i]), num(co[i, 1]), num(co[i, 2]), num(co[i, 3]), num(co[i, 4]),
      num(hc[i, "HC0"]), num(hc[i, "HC1"]), num(hc[i, "HC2"]), num(hc[i, "HC3"]))))
  f <- s$fstatistic
  predictions <- predict(fit, newdata = test)
  robust <- sapply(c("HC0", "HC1", "HC2", "HC3"), function(type) robust_entry(fit, type, predictions))
  if ("(Intercept)" %in% names(coef(fit))) for (type in c("HC0", "HC1", "HC2", "HC3")) {
    b <- coef(fit); V <- vcovHC(fit, type = type); slopes <- names(b) != "(Intercept)"
    own <- drop(t(b[slopes]) %*% solve(V[slopes, slopes], b[slopes])) / sum(slopes)
    if (abs(waldtest_f(fit, case$r, data, type) / own - 1) > 1e-9) stop(case$name, ": Wald F differs from lmtest")
  }
  entries <- c(entries, obj(
    c("name", "r_formula", "formula", "weight", "excluded", "n_used", "n_dropped", "coefficients", "sigma", "r_squared",
      "adj_r_squared", "f_statistic", "f_df", "df_residual", "predictions", "robust", "anova"),
    c(str(case$name), str(paste(deparse(case$r), collapse = "")), str(case$fitserve),
      if (is.null(case[["weight"]])) "null" else str(case[["weight"]]),
      if (is.null(case[["excluded"]])) "null" else str(case[["excluded"]]),
      num(nobs(fit)), num(nrow(train) - nobs(fit)),
      arr(coefficients), num(s$sigma), num(s$r.squared), num(s$adj.r.squared),
      num(f[["value"]]), arr(c(num(f[["numdf"]]), num(f[["dendf"]]))), num(fit$df.residual),
      arr(num(unname(predictions))), obj(c("HC0", "HC1", "HC2", "HC3"), robust), anova_table(fit))))
}

# Rank-deficient designs: the term that adds no rank (I(2 * sqft) after sqft; hood:garage's
# columns that the main effects already span) is left out of R's table or loses df.
anova_cases <- list(
  list(name = "aliased", r = price ~ sqft + I(2 * sqft) + hood, fitserve = "price ~ sqft + I(2 * sqft) + hood"),
  list(name = "aliased_weights", r = price ~ sqft + I(2 * sqft) + hood + age, fitserve = "price ~ sqft + I(2 * sqft) + hood + age",
       weight = "w")
)
anova_entries <- character(0)
for (case in anova_cases) {
  data <- train
  if (is.null(case[["weight"]])) {
    fit <- lm(case$r, data = data, na.action = na.exclude)
  } else {
    data$.w <- data[[case$weight]]
    fit <- lm(case$r, data = data, weights = .w, na.action = na.exclude)
  }
  anova_entries <- c(anova_entries, obj(
    c("name", "r_formula", "formula", "weight", "rank", "anova"),
    c(str(case$name), str(paste(deparse(case$r), collapse = "")), str(case$fitserve),
      if (is.null(case[["weight"]])) "null" else str(case[["weight"]]), num(fit$rank), anova_table(fit))))
}
cat(paste0("{\"r_version\": ", str(R.version.string), ",\n \"cases\": [\n  ",
           paste(entries, collapse = ",\n  "), "\n ],\n \"anova_cases\": [\n  ",
           paste(anova_entries, collapse = ",\n  "), "\n ]}\n"))
