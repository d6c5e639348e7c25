"""Generated protobuf code for the standard gRPC packages (``grpc.*``), prefixed ``capsync.``."""
