"""Plain Keras scripts a user would write instead of hdr: the baselines hdr is measured against."""
