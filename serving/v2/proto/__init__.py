"""The Open Inference Protocol's gRPC messages (open_inference.proto) and the Python module
grpcio-tools generates from them (`make v2-stubs`; committed, checked by tests/serving)."""
