"""What a trained run is used for: prediction on a user's images, the drawing window, export to
standard formats, tracking in MLflow."""
