"""Measuring generators: reference classifiers, conditional and distribution metrics, reports."""
