"""Churn risk: point-in-time features, a backtested logistic regression and the at-risk worklist."""
