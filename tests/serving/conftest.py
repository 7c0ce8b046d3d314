from tests.torch_threads import _one_torch_thread  # noqa: F401 (autouse fixture)
from tests.trained import trained  # noqa: F401 (fixture)
