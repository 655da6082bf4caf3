"""Training: the model builders (models.py), the training loop (train.py), the reused worker
process (worker.py), and the per-epoch TensorBoard log beside the loop (tensorboard_log.py)."""
