"""The Open Inference Protocol (KServe's "V2", Triton's and MLServer's protocol), apart from any
transport: its tensors decoded into the columns /predict's parser reads (tensors), its answers
and metadata (answers), one inference from request to answer (infer), and the gRPC service over
the protocol's proto (grpc_service, proto/). The REST endpoints live in serving.rest.v2, the
gRPC listener in serving.server.grpc_listener.
"""
