"""Image encoders: the :class:`Encoder` interface, architectures and checkpoint loading."""

__distribution__ = "medvlp-bench"  # the marker of each of our top-level packages (benchmark/layout.py)

from models.architectures import ARCHS, build_arch, infer_arch
from models.encoder import Encoder, InputContract
from models.loading import LoadedEncoder, load_encoder

__all__ = ["ARCHS", "Encoder", "InputContract", "LoadedEncoder", "build_arch", "infer_arch", "load_encoder"]
