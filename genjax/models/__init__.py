"""Model families, one file each; importing this package registers each one in genjax.registry.MODELS.

Reusable layers live in genjax/layers/, so this package reads as the list of families.
"""
from genjax.models import autoencoder  # noqa: F401
from genjax.models import vae  # noqa: F401
from genjax.models import gan  # noqa: F401
from genjax.models import rbm  # noqa: F401
from genjax.models import gan_encoder  # noqa: F401
from genjax.models import pix2pix  # noqa: F401
from genjax.models import flow  # noqa: F401
from genjax.models import texture  # noqa: F401
from genjax.models import seeds  # noqa: F401  the num_seeds > 1 wrapper around any family
