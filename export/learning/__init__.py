"""Learning: demonstrations -> trained teacher -> distilled student, read top-down.

`episodes` (the in-memory episode every reader returns) -> `data` (our sim demos; dispatches LeRobot folders to
`lerobot`) -> `sampler` -> `losses` -> `trainer` (`harmowam-edge train`) -> `distill_losses` -> `distill`
(`harmowam-edge distill`). The door below is the data layer, which needs no torch; import `trainer` and
`distill` for training itself (they import torch).
"""

from export.learning.data import load_episodes, read_sim_episodes
from export.learning.episodes import NO_PHASE, EpisodeData

__all__ = ["NO_PHASE", "EpisodeData", "load_episodes", "read_sim_episodes"]
