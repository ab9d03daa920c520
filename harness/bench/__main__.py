"""python -m harness.bench [--only NAME] [--rounds N] [--quick] [--out DIR] [hydra overrides]"""

import sys

from harness.bench.runner import main

main(sys.argv[1:])
