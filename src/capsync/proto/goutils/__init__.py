"""Generated protobuf code for goutils' packages (``proto.rpc.v1``: the AuthService viam dials with)."""
