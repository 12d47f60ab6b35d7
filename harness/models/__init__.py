"""Model builders (``model.component`` in a recipe) and, per folder, custom ``transformers`` models."""
