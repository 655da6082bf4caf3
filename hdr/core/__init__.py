"""The bottom layer: exit codes and errors, the config schema, the datasets, the backend, and
helpers every layer above may use (atomic files, terminal text, figures). Imports nothing of hdr above it."""
