"""Style transfer (Gatys et al. 2015b): chelsea's layout in the style of immunohistochemistry
(`--config experiments/style_transfer.py:STYLE,CONTENT` picks others), by L-BFGS from the content."""
from genjax.configs import texture_config


def get_config(pair: str = "immunohistochemistry,chelsea"):
  style, _, content = (pair or "immunohistochemistry,chelsea").partition(",")
  # content_weight 0.01: at 1.0 and 0.1 the result stays the content, barely recoloured (measured).
  config = texture_config("optimize", style, init="content", content_weight=0.01, style_weight=1.0,
                          num_syntheses=1)
  config.dataset.content = content or "chelsea"
  return config
