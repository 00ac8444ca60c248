"""One model version from a local directory: who it is, its files, its fast path, loaded.

No registry, no web framework: `serving.registry` decides which directory to load, `serving.rest`
answers requests with what `load_local` returns. `training/compile.py` writes the ONNX artifact
that `serving.model.onnx_format` defines.
"""
