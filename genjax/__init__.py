"""genjax: autoencoders and generative models in JAX/Flax, one trainer from a laptop CPU to a TPU pod."""
from genjax import data  # noqa: F401  registers the datasets
from genjax import models  # noqa: F401  registers the model families

__version__ = "0.1.0"

from genjax.api import Model, get_config, load, train  # noqa: E402  the notebook API
