"""Data: sources -> FaceSet -> protocol -> leak-free split -> prepared directory."""
