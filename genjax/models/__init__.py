"""Model families; importing this package registers each one in genjax.registry.MODELS."""
from genjax.models import autoencoder  # noqa: F401
from genjax.models import vae  # noqa: F401
from genjax.models import gan  # noqa: F401
