"""Put this folder on PYTHONPATH to run Python as if the torch extra were not installed.

A None in sys.modules makes `import torch` raise ImportError and
`importlib.util.find_spec("torch")` answer None, as on a light install.
"""

import sys

for _name in ("torch", "torchvision", "facenet_pytorch"):
    sys.modules[_name] = None  # type: ignore[assignment]
