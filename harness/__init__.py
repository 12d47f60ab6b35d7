"""harness: train and evaluate sequence models from YAML recipes, the Hugging Face way."""

import logging as _logging

__version__ = "0.1.0"

# PEFT imports bitsandbytes whenever it is installed (requirements.lock has it, for model.quantization). On a CPU
# with AVX512-BF16 its CPU backend then logs, at import, that the optional `kernels` package (a kernel downloaded
# from the Hub) is absent, and uses its own CPU kernels, which our QLoRA tests run on. That module logs nothing
# else; a line in every run that uses PEFT is noise, so it logs errors only.
_logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(_logging.ERROR)
