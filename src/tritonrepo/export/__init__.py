"""Turning a checkpoint into the files of one model version (ONNX export, Python-backend packaging)."""
