"""The packages of neurov1: those under src/, and the Hydra configs of conf/ as the package ``neurov1.conf``.

conf/ stays at the top of the repository (where Hydra users look for it) and is mapped into the package when the
wheel is built, and by editable installs; every command finds it as ``pkg://neurov1.conf``.
"""

from setuptools import find_namespace_packages, setup

configs = ["neurov1." + name for name in find_namespace_packages(".", include=["conf", "conf.*"])]
setup(packages=[*find_namespace_packages("src"), *configs], package_dir={"": "src", "neurov1.conf": "conf"})
