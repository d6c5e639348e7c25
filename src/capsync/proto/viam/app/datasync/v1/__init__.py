"""Generated protobuf code for ``viam.app.datasync.v1`` (source: data_sync.proto)."""
