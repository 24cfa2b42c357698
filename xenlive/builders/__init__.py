"""Guest image builders other than mmdebstrap, each a self-contained module."""
