"""``python -P -m bootstrap.worker FD``: one copy worker process (:mod:`bootstrap.process`).

A module of its own so that what the worker pickles to its parent is named after
``bootstrap.process``, not after ``__main__``.
"""

import sys

from bootstrap.process import main

if __name__ == "__main__":
    main(int(sys.argv[1]))
