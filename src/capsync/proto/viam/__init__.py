"""Generated protobuf code for Viam's API packages (``viam.*``)."""
