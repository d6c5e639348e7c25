"""Generated protobuf code for ``viam.app.data.v1`` (source: data.proto)."""
