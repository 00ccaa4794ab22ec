"""Old home of the process-group helpers, now ``distill.distributed`` (the bottom layer).

The old name is the very same module object, so code (and tests) that patch
``distill.train.distributed.X`` still patch what the library uses.
"""

import sys

from distill import distributed as _distributed

sys.modules[__name__] = _distributed
