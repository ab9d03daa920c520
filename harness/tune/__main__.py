"""python -m harness.tune --trials N [--seeds 0] [-- hydra overrides]: make tune (harness/tune/study.py)."""

import sys

from harness.tune.study import main

if __name__ == "__main__":
    main(sys.argv[1:])
