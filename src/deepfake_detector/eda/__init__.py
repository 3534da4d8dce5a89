"""Exploratory data analysis: `run_eda(data, out_dir)` writes report.html and summary.json."""

from deepfake_detector.eda.run import run_eda

__all__ = ["run_eda"]
