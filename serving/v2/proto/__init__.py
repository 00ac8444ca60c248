"""The Open Inference Protocol's gRPC definition (open_inference.proto) and the Python modules
grpcio-tools generates from it (`make v2-stubs`; committed, checked by tests/serving)."""
