"""Generated protobuf code for ``viam.app.dataset.v1`` (source: dataset.proto)."""
