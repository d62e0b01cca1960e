"""Generation past one process: workers on Ray with one exact target (``clinsynth generate
--workers K`` / ``--ray-address``). Ray is the optional ``scale`` extra; nothing here imports
it until a distributed run starts."""

from clinsynth.scale.coordinator import Coordinator, Lease, PriorState, Verdict
from clinsynth.scale.parts import merge_parts, part_dir, read_parts

__all__ = ["Coordinator", "Lease", "PriorState", "Verdict", "merge_parts", "part_dir", "read_parts"]
