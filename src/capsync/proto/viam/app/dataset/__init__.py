"""Generated protobuf code for ``viam.app.dataset.*``."""
