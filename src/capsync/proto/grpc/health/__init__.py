"""Generated protobuf code for ``grpc.health.*``."""
