"""Many runs at once: executors (local workers, Ray), and the sweeps, cross-validations and
searches that plan runs for them."""
