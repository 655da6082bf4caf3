"""hdr's benchmarks, baselines and experiments, and the renderer of the documents' figures from their stored results."""
