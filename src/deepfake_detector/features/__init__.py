"""Frozen-encoder features: an on-disk cache (`cache`), heads on them (`heads`, numpy inference)
and their fitting (`fit`: logistic regression and a small MLP)."""
