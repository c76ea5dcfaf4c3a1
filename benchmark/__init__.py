"""medvlp-bench: the benchmark harness for chest X-ray image encoders."""

__version__ = "0.1.0"
