from deepfake_detector.cli import app

app()
