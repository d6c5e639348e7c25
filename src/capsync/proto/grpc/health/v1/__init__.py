"""Generated protobuf code for ``grpc.health.v1`` (source: health.proto)."""
