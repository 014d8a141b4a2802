"""The Self-* critique loops as sessions: a generator and a critic, samplers and a voter, a coder and an executor."""

from agents.loops.align import SelfAlign
from agents.loops.base import Loop, LoopOptions, LoopSetup
from agents.loops.consistency import SelfConsistency
from agents.loops.debug import SelfDebug
from agents.loops.evaluate import SelfEval
from agents.loops.instruct import SelfInstruct
from agents.loops.refine import SelfRefine

#: Every loop by its session type, as scenarios and batches name them.
LOOPS: dict[str, type[Loop]] = {loop.loop: loop for loop in
                                (SelfRefine, SelfConsistency, SelfDebug, SelfEval, SelfInstruct, SelfAlign)}

__all__ = ["LOOPS", "Loop", "LoopOptions", "LoopSetup", "SelfAlign", "SelfConsistency", "SelfDebug", "SelfEval",
           "SelfInstruct", "SelfRefine"]
