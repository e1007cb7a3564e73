# Reference values for one fit per group (fitserve's `by`), computed with R's lm on each group's rows.
#
# Regenerate (R needed only for this; Debian: apt-get install r-base-core):
#     cd tests/data/r && Rscript groups.R > groups.json
#
# Data: groups.csv (45 training rows in four stores "A", "B", "C", "b", which sort in that
# order by code point; an integer column `region` of 2, 10 and 33, which sort differently
# as text; a text column `kind` whose level "k1", the reference of the whole table, store
# "C" does not have; weights `w`; one empty cell in `x2`) and groups_test.csv (6 rows, one
# with an empty `x2`). Both were generated for these tests (see README.md beside them).
#
# Each case fits lm(formula, data = the group's rows) per group, in sorted order, as
# lm(..., subset) would: levels absent from a group are dropped (lm's drop.unused.levels),
# and rows with a missing value are left out (na.exclude). predict() gives each test row its
# own group's prediction and interval, null where the row has a missing value.

invisible(Sys.setlocale("LC_COLLATE", "C"))  # groups and levels in code point order

train <- read.csv("groups.csv", na.strings = c("", "NA"), stringsAsFactors = FALSE)
test <- read.csv("groups_test.csv", na.strings = c("", "NA"), stringsAsFactors = FALSE)

cases <- list(
  list(name = "numeric", formula = y ~ x1 + x2, fitserve = "y ~ x1 + x2", by = "store",
       interval = "prediction"),
  list(name = "factor", formula = y ~ x1 + kind, fitserve = "y ~ x1 + kind", by = "store",
       interval = "confidence"),
  list(name = "weights", formula = y ~ x1 + x2, fitserve = "y ~ x1 + x2", by = "store", weight = "w",
       interval = "confidence"),
  list(name = "factor_weights", formula = y ~ x1 + x2 + kind, fitserve = "y ~ x1 + x2 + kind", by = "store",
       weight = "w", interval = "prediction"),
  list(name = "integer_by", formula = y ~ x1 + x2, fitserve = "y ~ x1 + x2", by = "region",
       interval = "prediction")
)

num <- function(x) ifelse(is.na(x) | !is.finite(x), "null", sprintf("%.17g", x))
str <- function(x) paste0("\"", x, "\"")
vec <- function(x) paste0("[", paste(num(x), collapse = ", "), "]")

one_case <- function(case) {
  keys <- train[[case$by]]
  groups <- sort(unique(keys))
  n_test <- nrow(test)
  fit <- lwr <- upr <- rep(NA_real_, n_test)
  entries <- character(0)
  for (g in groups) {
    rows <- train[keys == g, ]
    if (is.character(rows$kind)) rows$kind <- factor(rows$kind)
    model <- if (is.null(case$weight)) {
      lm(case$formula, data = rows, na.action = na.exclude)
    } else {
      rows$weight_column <- rows[[case$weight]]
      lm(case$formula, data = rows, weights = weight_column, na.action = na.exclude)
    }
    s <- summary(model)
    table <- coef(s)
    ci <- confint(model)
    f <- s$fstatistic
    entries <- c(entries, paste0(
      "{\"group\": ", if (is.character(g)) str(g) else num(g),
      ", \"n_samples\": ", nrow(model.frame(model)),
      ", \"terms\": [", paste(str(rownames(table)), collapse = ", "), "]",
      ", \"estimate\": ", vec(table[, 1]), ", \"std_error\": ", vec(table[, 2]),
      ", \"t_value\": ", vec(table[, 3]), ", \"p_value\": ", vec(table[, 4]),
      ", \"ci_lower\": ", vec(ci[, 1]), ", \"ci_upper\": ", vec(ci[, 2]),
      ", \"r_squared\": ", num(s$r.squared), ", \"adj_r_squared\": ", num(s$adj.r.squared),
      ", \"residual_std_error\": ", num(s$sigma), ", \"df_residual\": ", model$df.residual,
      ", \"f_statistic\": ", num(f[1]),
      ", \"f_p_value\": ", num(pf(f[1], f[2], f[3], lower.tail = FALSE)), "}"))
    at <- which(test[[case$by]] == g)
    if (length(at) > 0) {
      new <- test[at, ]
      if (!is.null(model$xlevels$kind)) new$kind <- factor(new$kind, levels = model$xlevels$kind)
      p <- suppressWarnings(predict(model, newdata = new, interval = case$interval))
      fit[at] <- p[, "fit"]
      lwr[at] <- p[, "lwr"]
      upr[at] <- p[, "upr"]
    }
  }
  paste0(
    "{\"name\": ", str(case$name), ", \"formula\": ", str(case$fitserve), ", \"by\": ", str(case$by),
    ", \"weight\": ", if (is.null(case$weight)) "null" else str(case$weight),
    ", \"interval\": ", str(case$interval),
    ", \"groups\": [\n  ", paste(entries, collapse = ",\n  "), "]",
    ",\n \"predictions\": ", vec(fit), ", \"lower\": ", vec(lwr), ", \"upper\": ", vec(upr), "}")
}

cat(paste0("{\"r_version\": ", str(R.version.string), ", \"cases\": [\n",
           paste(vapply(cases, one_case, ""), collapse = ",\n"), "\n]}\n"))
