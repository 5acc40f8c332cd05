"""The host side: corpora, training and evaluation (TensorFlow), the teacher."""
import os

# TensorFlow's C++ start-up notices stay quiet unless the user sets the level (TensorFlow reads it at import).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
