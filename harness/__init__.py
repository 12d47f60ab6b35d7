"""harness: train and evaluate sequence models from YAML recipes, the Hugging Face way."""

__version__ = "0.1.0"
