"""Generated protobuf code (see capsync.proto.generate)."""
