"""ONNX export (``deepmatting export``): a model as one ``.onnx`` file that onnxruntime runs at any size.

The graph, its inputs and metadata are described in :mod:`deepmatting.onnx_graph`; run the file with
``deepmatting.backends.OnnxBackend`` (or ``deepmatting predict --onnx``). ``onnx`` and ``onnxruntime``
are the optional ``onnx`` extra: ``pip install 'deepmatting[onnx]'``.
"""

from .onnx_graph import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, export_onnx

__all__ = ["DEFAULT_OPSET", "MAX_OPSET", "MIN_OPSET", "export_onnx"]
