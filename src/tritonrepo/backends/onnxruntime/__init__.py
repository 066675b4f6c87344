"""A Python-based ``onnxruntime`` backend for Triton servers that lack the native one (development only)."""
